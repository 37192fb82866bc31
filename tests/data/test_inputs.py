"""The input pipeline over the prepared Fashion-MNIST: what the models train and are evaluated on."""

import numpy as np
import pytest

from pipeline import inputs


def test_training_pipeline_is_normalized_batched_and_seeded(spec):
    def first_batch(value_range, seed):
        ds = inputs.training_dataset(spec, batch_size=16, value_range=value_range, seed=seed, examples=128)
        return np.asarray(next(iter(ds)))

    tanh = first_batch("tanh", 0)
    assert tanh.shape == (16, 28, 28, 1) and tanh.dtype == np.float32
    assert tanh.min() == -1.0 and tanh.max() == 1.0
    unit = first_batch("unit", 0)
    assert unit.min() == 0.0 and unit.max() == 1.0
    np.testing.assert_array_equal(first_batch("tanh", 0), tanh)  # same seed, same order
    assert not np.array_equal(first_batch("tanh", 1), tanh)


def test_test_images_are_grey_in_unit_range_and_binarized_reproducibly(spec):
    grey = inputs.grey_test_images(spec)
    assert grey.shape == (10000, 28, 28, 1) and grey.dtype == np.float32
    assert grey.min() == 0.0 and grey.max() == 1.0
    binary = inputs.binarized_test_images(spec)
    assert set(np.unique(binary)) == {0.0, 1.0}
    np.testing.assert_array_equal(inputs.binarized_test_images(spec), binary)  # fixed seed, same draw
    # a pixel is 1 with probability its grey level: the mean matches to sampling noise
    assert abs(binary.mean() - grey.mean()) < 1e-3


def test_unknown_value_range_is_refused():
    with pytest.raises(ValueError, match="unknown value range 'sigmoid'; expected 'unit' or 'tanh'"):
        inputs.normalize(np.zeros((1, 28, 28, 1), np.uint8), "sigmoid")
