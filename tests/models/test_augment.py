"""Differentiable augmentation (models/augment.py): the sampler and each geometric map against
numpy, identity at p = 0, exact gradients through to the generator, and p's adaptation."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from models import augment


def _images(channels=3, batch=2, side=8, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, (batch, side, side, channels)).astype("float32")


def _matrices(*rows):
    return tf.constant(np.stack([np.asarray(rows, "float32")] * 2))


def test_warp_with_exact_maps_equals_numpy():
    images = _images()
    flip_x = _matrices([-1, 0, 0], [0, 1, 0], [0, 0, 1])
    np.testing.assert_allclose(augment.warp(images, flip_x), images[:, :, ::-1], atol=1e-6)
    quarter = _matrices([0, -1, 0], [1, 0, 0], [0, 0, 1])  # source = rotate(output): a 90-degree turn
    np.testing.assert_allclose(augment.warp(images, quarter), np.rot90(images, k=1, axes=(1, 2)), atol=1e-5)
    shift = _matrices([1, 0, -2], [0, 1, 0], [0, 0, 1])  # the source is 2 pixels left: content moves right
    expected = np.zeros_like(images)
    expected[:, :, :-2] = images[:, :, 2:]
    shifted = augment.warp(images, _matrices([1, 0, 2], [0, 1, 0], [0, 0, 1]), mode="zeros")
    np.testing.assert_allclose(shifted, expected, atol=1e-6)
    reflected = np.asarray(augment.warp(images, shift))
    np.testing.assert_allclose(reflected[:, :, 2:], images[:, :, :-2], atol=1e-6)
    np.testing.assert_allclose(reflected[:, :, :2], images[:, :, 2:0:-1], atol=1e-6)  # numpy's "reflect"


def test_the_sampler_gradient_is_the_exact_adjoint():
    rng = np.random.default_rng(1)
    images = tf.constant(_images(channels=1, batch=1, side=5))
    xs = tf.constant(rng.uniform(-2, 6, (1, 4, 4)).astype("float32"))
    ys = tf.constant(rng.uniform(-2, 6, (1, 4, 4)).astype("float32"))
    weights = tf.constant(rng.standard_normal((1, 4, 4, 1)).astype("float32"))
    with tf.GradientTape() as tape:
        tape.watch(images)
        loss = tf.reduce_sum(augment.sample(images, xs, ys) * weights)
    gradient = tape.gradient(loss, images).numpy()
    # sampling is linear in the image: the gradient is d loss / d pixel, found by moving one pixel
    base = float(loss)
    for index in np.ndindex(*images.shape):
        moved = images.numpy().copy()
        moved[index] += 1.0
        change = float(tf.reduce_sum(augment.sample(tf.constant(moved), xs, ys) * weights)) - base
        assert abs(change - gradient[index]) < 1e-4


@pytest.mark.parametrize("channels", [1, 3])
def test_at_p_zero_ada_changes_nothing_and_at_p_one_it_changes_every_image(channels):
    images = _images(channels, batch=16, side=16)
    seed = keras.random.SeedGenerator(0)
    np.testing.assert_allclose(augment.ada_augment(images, 0.0, seed), images, atol=1e-5)
    changed = np.asarray(augment.ada_augment(images, 1.0, seed))
    assert changed.shape == images.shape
    assert all(np.abs(changed[i] - images[i]).max() > 0.05 for i in range(16))


@pytest.mark.parametrize("kind", ["ada", "diffaugment"])
def test_gradients_reach_the_generator_through_the_augmentation(kind):
    generator = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8 * 8 * 3), keras.layers.Reshape((8, 8, 3))])
    discriminator = keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(), keras.layers.Dense(1)])
    layer = augment.Augment(kind)
    layer.p.assign(0.8)
    seed = keras.random.SeedGenerator(3)
    z = tf.constant(np.random.default_rng(0).standard_normal((6, 4)).astype("float32"))
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(discriminator(layer(generator(z), seed=seed)))
    gradients = tape.gradient(loss, generator.trainable_variables)
    assert all(g is not None and float(tf.reduce_sum(tf.abs(g))) > 0 for g in gradients)


def test_p_moves_by_the_images_over_the_speed_and_stays_in_0_1():
    layer = augment.Augment("ada", target=0.6, speed_images=1000.0, interval=4)
    sure = tf.ones((50, 1))  # every real scored positive: r_t = 1 > 0.6
    for step in range(1, 9):
        layer.observe(sure)
        expected = 0.2 * (step // 4)  # +200 images / 1000 at the end of each interval of 4 steps
        assert float(layer.p) == pytest.approx(expected)
    unsure = -tf.ones((50, 1))  # r_t = -1: p falls back, never below 0
    for _ in range(12):
        layer.observe(unsure)
    assert float(layer.p) == 0.0
    layer.p.assign(0.9)
    for _ in range(8):
        layer.observe(sure)
    assert float(layer.p) == 1.0


def test_diffaugment_translates_with_zeros_and_cuts_out_a_square():
    images = np.ones((64, 16, 16, 3), "float32")
    out = np.asarray(augment.diff_augment(images, keras.random.SeedGenerator(0)))
    zeros = (np.abs(out).max(axis=-1) == 0).mean(axis=(1, 2))
    assert zeros.min() > 0.0  # the cutout (and any translation) leave zeros in every image
    assert zeros.max() <= 0.25 + 2 * 0.125  # at most the 8x8 cutout and a 2-pixel shift on each axis


def _p_after_training(bias: float, steps: int = 12, kind: str = "dcgan", shape=(28, 28, 1)) -> float:
    """ADA's p after ``steps`` real training steps (batch 32) of a small ``kind`` whose discriminator
    is made sure of its answer: its logit's bias set to ``bias`` (r_t = sign(bias) on every real)."""
    from models import registry

    options = {"augment": "ada", "ada_kimg": 0.64}  # an interval of 4 steps (128 images) moves p by 0.2
    model = registry.build(
        kind, image_shape=shape, latent_dim=8, learning_rate=1e-4, seed=0, width=8, options=options, num_classes=3
    )
    model.discriminator.get_layer("logit").bias.assign([bias])
    images = np.random.default_rng(0).uniform(-1, 1, (64, *shape)).astype("float32")
    labels = np.arange(64, dtype="int32") % 3
    data = tf.data.Dataset.from_tensor_slices((images, labels) if registry.get(kind).labels else images)
    data = data.repeat().batch(32, drop_remainder=True)
    history = model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    p = float(model.augment.p)
    assert history.history["augment_p"][-1] == pytest.approx(p)  # what the train stage logs per epoch
    keras.backend.clear_session()
    return p


def test_in_training_p_rises_while_d_is_sure_of_the_reals_and_stays_at_0_while_it_is_not():
    assert _p_after_training(50.0) == pytest.approx(0.6)  # 3 intervals of r_t = 1 > 0.6
    assert _p_after_training(-50.0) == 0.0  # r_t = -1: p would fall, and stays at 0


@pytest.mark.parametrize("kind", ["cdcgan", "stylegan"])
def test_the_conditional_dcgan_and_stylegan_steer_p_the_same_way_on_colour_images(kind):
    assert _p_after_training(50.0, kind=kind, shape=(32, 32, 3)) == pytest.approx(0.6)
    assert _p_after_training(-50.0, kind=kind, shape=(32, 32, 3)) == 0.0


class _HeldOutReals(keras.layers.Layer):
    """A "generator" whose fakes are real images the discriminator never sees as reals: each
    latent picks one from ``bank``. D can tell them from its reals only by memorising its reals,
    which is what ADA's r_t = E[sign(D(real))] is there to detect (Karras et al. 2020, section 3)."""

    def __init__(self, bank, **kw):
        super().__init__(**kw)
        self.bank = tf.constant(bank)

    def call(self, z):
        index = tf.math.floormod(tf.cast(tf.abs(z[:, 0]) * 1e4, tf.int32), self.bank.shape[0])
        return tf.gather(self.bank, index)


def _p_with_reals(reals: np.ndarray, bank: np.ndarray, steps: int) -> float:
    from models import registry

    # p can cross 0 -> 1 in 10,000 images: 0.0128 an interval of 4 steps, slow enough for D to
    # catch up with each new p (at 0.128 an interval p only flickered between 0 and one step)
    options = {"augment": "ada", "ada_kimg": 10.0}
    model = registry.build(
        "dcgan", image_shape=(28, 28, 1), latent_dim=8, learning_rate=2e-3, seed=0, width=16, options=options
    )
    z = keras.Input((8,))
    # the real generator's weights stay in (its optimizer was built for them) with a zero gradient
    model.generator = keras.Model(z, _HeldOutReals(bank)(z) + 0.0 * model.generator(z))
    data = tf.data.Dataset.from_tensor_slices(reals).repeat().shuffle(len(reals), seed=0).batch(32, drop_remainder=True)
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    p = float(model.augment.p)
    keras.backend.clear_session()
    return p


@pytest.mark.slow
def test_p_rises_when_d_memorises_a_tiny_set_and_stays_near_0_on_a_large_one(tfds_dir):
    from pipeline import inputs

    spec = inputs.describe("fashion_mnist", tfds_dir)
    train = inputs.load_arrays(spec, "train", limit=20000)[0].astype("float32") / 127.5 - 1.0
    held_out = inputs.load_arrays(spec, "test", limit=2000)[0].astype("float32") / 127.5 - 1.0
    tiny = _p_with_reals(train[:16], held_out, steps=800)  # 16 images, each seen 1,600 times: memorised
    large = _p_with_reals(train, held_out, steps=800)  # 20,000 images, each seen about once
    # tiny: p climbs until the augmentations keep D from being sure of its reals (10 operations
    # on grey images, each at p: at 0.05 some 40% of the reals are changed); large: D cannot tell
    # its reals from the held-out ones, r_t stays below 0.6 and p at 0
    assert tiny >= 0.05, (tiny, large)
    assert large <= 0.01, (tiny, large)
