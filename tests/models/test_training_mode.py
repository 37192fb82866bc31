"""No family trains in inference mode: one training step runs every BatchNormalization and
Dropout layer of the networks it trains with training=True, and moves every moving statistic."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from models import registry
from tests.training_mode import modal_layers, moving_statistics, record_modes, unmoved

SHAPE = (28, 28, 1)
BATCH = 8


def _one_step(model, family) -> None:
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (BATCH, *SHAPE)).astype(np.float32)
    if family.value_range == "tanh":
        images = 2 * images - 1
    if family.binarized:
        images = (images > 0.5).astype(np.float32)
    data = (images, rng.integers(0, 10, BATCH).astype(np.int32)) if family.labels else images
    model.fit(tf.data.Dataset.from_tensors(data).repeat(), steps_per_epoch=1, epochs=1, verbose=0, shuffle=False)


CASES = [(name, {}) for name in registry.names()] + [("dcgan", {"ema": 0.99})]


@pytest.mark.parametrize(("name", "options"), CASES, ids=[n + ("-ema" if o else "") for n, o in CASES])
def test_one_training_step_runs_every_modal_layer_in_training_mode(name, options):
    family = registry.get(name)
    model = registry.build(name, image_shape=SHAPE, latent_dim=8, learning_rate=1e-3, seed=0, width=8, options=options)
    modes = record_modes(model)
    before = moving_statistics(model)
    _one_step(model, family)
    for layer in modal_layers(model):
        calls = modes[id(layer)]
        if layer.trainable:  # a network the step trains (an EMA twin is copied, not called)
            assert calls, f"{name}: {layer.path} was not called in the training step"
        assert all(calls), f"{name}: {layer.path} ran in inference mode in the training step: {calls}"
    moved_not = unmoved(before, moving_statistics(model))
    assert not moved_not, f"{name}: moving statistics did not move in {len(moved_not)} BatchNormalization layers"


def test_the_dcgan_has_both_kinds_of_layer_so_the_audit_above_bites():
    model = registry.build("dcgan", image_shape=SHAPE, latent_dim=8, learning_rate=1e-3, seed=0, width=8)
    kinds = {type(layer).__name__ for layer in modal_layers(model)}
    assert kinds == {"BatchNormalization", "Dropout"}


def test_the_audit_catches_a_step_that_calls_its_networks_in_inference_mode():
    model = registry.build("dcgan", image_shape=SHAPE, latent_dim=8, learning_rate=1e-3, seed=0, width=8)
    modes = record_modes(model)
    before = moving_statistics(model)
    z = tf.random.normal((BATCH, 8))

    @tf.function
    def inference_mode_step():  # the bug: no training argument inside a custom step
        return model.discriminator(model.generator(z))

    inference_mode_step()
    assert [flag for layer in modal_layers(model) for flag in modes[id(layer)]] == [False] * 4
    assert len(unmoved(before, moving_statistics(model))) == 2
