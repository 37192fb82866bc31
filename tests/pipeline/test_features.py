"""The feature extractor's self-supervised task for unlabelled folders (pipeline/features.py):
images turned by quarter turns, labelled with their turns."""

from __future__ import annotations

import numpy as np

from pipeline import features


def test_quarter_turns_turn_each_image_as_numpy_does():
    images = np.random.default_rng(0).uniform(size=(6, 8, 8, 3)).astype(np.float32)
    turns = np.array([0, 1, 2, 3, 1, 2], np.int32)
    turned = features.quarter_turns(images, turns).numpy()
    for image, k, out in zip(images, turns, turned):
        np.testing.assert_array_equal(out, np.rot90(image, k, axes=(0, 1)))


def test_rotation_batches_label_every_image_with_its_turn_drawn_afresh():
    images = np.random.default_rng(1).uniform(size=(10, 8, 8, 1)).astype(np.float32)
    seen: dict[int, set[int]] = {}
    batches = list(features.rotation_batches(images, batch_size=4, seed=3, epochs=3))
    assert len(batches) == 9  # ceil(10 / 4) per epoch
    for x, k in batches:
        for image, turn in zip(x.numpy(), k.numpy()):
            # which original it is: the one that turns into it
            match = [i for i, original in enumerate(images) if np.array_equal(np.rot90(original, turn), image)]
            assert len(match) == 1
            seen.setdefault(match[0], set()).add(int(turn))
    assert len(seen) == 10 and any(len(turns) > 1 for turns in seen.values())  # the turns change between epochs
    again = [k.numpy() for _, k in features.rotation_batches(images, batch_size=4, seed=3, epochs=3)]
    assert all(np.array_equal(a, b.numpy()) for a, (_, b) in zip(again, batches))  # seeded


def test_every_turn_is_the_test_set_in_all_four_turns():
    images = np.arange(2 * 4 * 4, dtype=np.float32).reshape(2, 4, 4, 1)
    turned, labels = features.every_turn(images)
    assert turned.shape == (8, 4, 4, 1) and labels.tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    np.testing.assert_array_equal(turned[3], np.rot90(images[1], 1))
    assert features.recipe_version(task="rotation").endswith("-rot")
    assert features.recipe_version(1, 50, "rotation").endswith("-rot-e1-n50")


def test_a_small_dataset_trains_the_extractor_for_at_least_min_steps():
    from types import SimpleNamespace

    fashion, emoji = SimpleNamespace(splits={"train": 60000}), SimpleNamespace(splits={"train": 3592})
    assert features.standard_epochs(fashion) == features.EPOCHS == 3  # 469 steps an epoch: 3 make 1,407
    assert features.standard_epochs(emoji) == 35  # 29 steps an epoch: 35 make 1,015 >= MIN_STEPS
    assert features.standard_epochs(fashion, examples=2000) == 63  # 16 steps an epoch
    assert features.recipe_version(features.standard_epochs(fashion)) == "cnn128-v5"  # Fashion's protocol unchanged
    assert features.recipe_version(features.standard_epochs(emoji)) == "cnn128-v5-e35-n0"


def test_the_sanity_scores_put_blank_and_noise_images_far_from_real_ones():
    import keras

    from models import classifier

    rng = np.random.default_rng(0)
    images = np.ones((400, 16, 16, 1), np.float32)
    labels = rng.integers(0, 2, 400)
    for image, label in zip(images, labels):  # dark squares (class 0) or bars (class 1) on white
        top, left = rng.integers(2, 8, 2)
        image[top : top + 6, left : left + (6 if label == 0 else 2)] = rng.uniform(0, 0.5)
    keras.utils.set_random_seed(0)
    network = classifier.build_classifier((16, 16, 1), 2)
    trainable = classifier.build_trainable(network, 60)
    trainable.fit(images[:300], labels[:300], batch_size=32, epochs=6, verbose=0)
    sane = features.sanity_scores(network, images[:300], images[300:])
    assert sane["sanity_fid_white"] > 10 * sane["sanity_fid_train"], sane
    assert sane["sanity_fid_noise"] > 10 * sane["sanity_fid_train"], sane
