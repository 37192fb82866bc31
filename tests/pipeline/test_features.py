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
