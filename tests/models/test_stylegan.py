"""StyleGAN's networks and training step: what the papers define, checked numerically."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from models import progressive, registry, stylegan, stylegan_networks

SHAPE = (28, 28, 1)


@pytest.fixture(scope="module")
def model():
    return registry.build("stylegan", image_shape=SHAPE, latent_dim=16, learning_rate=2e-3, seed=0, width=8)


def test_layout_of_styles_and_noise():
    assert progressive.resolutions(SHAPE) == [7, 14, 28]
    assert progressive.num_ws(SHAPE) == 6
    assert sorted({index for _, index in progressive.w_index(SHAPE)}) == list(range(6))
    layout = progressive.noise_layout(SHAPE)
    assert [side for _, side in layout] == [7, 14, 14, 28, 28]  # one map per convolution
    assert all(a + s * s == b for (a, s), (b, _) in zip(layout, layout[1:]))  # packed, no gaps
    assert progressive.noise_size(SHAPE) == 49 + 2 * 196 + 2 * 784
    assert progressive.resolutions((32, 32, 3)) == [4, 8, 16, 32]  # StyleGAN's 4x4 constant
    assert progressive.resolutions((112, 112, 3)) == [7, 14, 28, 56, 112]
    assert progressive.num_ws((64, 64, 3)) == 10 and progressive.layer_groups((64, 64, 3))["coarse"] == [0, 1, 2]
    for shape in ((48, 48, 3), (32, 28, 1), (7, 7, 1)):
        with pytest.raises(ValueError, match="7 \\* 2\\*\\*k or 4 \\* 2\\*\\*k"):
            progressive.resolutions(shape)


def test_modulated_convolution_equals_the_fused_per_sample_weights():
    rng = np.random.default_rng(0)
    layer = stylegan_networks.ModulatedConv2D(5, 3, demodulate=True)
    x = rng.standard_normal((3, 7, 7, 4)).astype(np.float32)
    w = rng.standard_normal((3, progressive.W_DIM)).astype(np.float32)
    out = np.asarray(layer([x, w]))
    styles = np.asarray(layer.affine(w))
    kernel = np.asarray(layer.kernel) * layer.weight_scale
    for b in range(3):  # StyleGAN2's form: modulate the weights per sample, demodulate, convolve
        weights = kernel * styles[b][None, None, :, None]
        weights = weights / np.sqrt(np.sum(weights**2, axis=(0, 1, 2), keepdims=True) + 1e-8)
        expected = tf.nn.conv2d(x[b : b + 1], weights, 1, "SAME").numpy()[0]
        np.testing.assert_allclose(out[b], expected, atol=1e-4)


def test_affine_bias_starts_at_one_and_noise_strength_at_zero(model):
    layer = model.synthesis.get_layer("conv14_0")
    np.testing.assert_allclose(layer.conv.affine.bias.numpy() * layer.conv.affine.lr_multiplier, 1.0)
    assert float(layer.noise_strength.numpy()) == 0.0


def _feed(model, n, seed=0, **values):
    rng = np.random.default_rng(seed)
    feed = {
        "z": rng.standard_normal((n, 16)).astype(np.float32),
        "z2": rng.standard_normal((n, 16)).astype(np.float32),
        "mix": np.zeros((n, model.num_ws), np.float32),
        "psi": np.ones((n, 1), np.float32),
        "noise": rng.standard_normal((n, model.noise_size)).astype(np.float32),
    }
    feed.update(values)
    return [feed[k] for k in ("z", "z2", "mix", "psi", "noise")]


def test_truncation_pulls_every_style_to_w_avg(model):
    generator = model.ema_generator
    w_avg = generator.get_layer("w_average").w_avg
    w_avg.assign(np.linspace(-1, 1, progressive.W_DIM).astype(np.float32))
    _, ws_full = generator(_feed(model, 4), training=False)
    _, ws_none = generator(_feed(model, 4, psi=np.zeros((4, 1), np.float32)), training=False)
    _, ws_half = generator(_feed(model, 4, psi=np.full((4, 1), 0.5, np.float32)), training=False)
    np.testing.assert_allclose(ws_none, np.broadcast_to(w_avg.numpy(), ws_none.shape), atol=1e-6)
    np.testing.assert_allclose(ws_half, (np.asarray(ws_full) + w_avg.numpy()) / 2, atol=1e-5)
    w_avg.assign(np.zeros(progressive.W_DIM, np.float32))


def test_mix_takes_the_chosen_layers_from_z2(model):
    generator, mapping = model.ema_generator, model.ema_mapping
    feed = _feed(model, 2, mix=np.array([[0, 0, 0, 1, 1, 1], [1, 0, 1, 0, 0, 0]], np.float32))
    _, ws = generator(feed, training=False)
    w1, w2 = np.asarray(mapping(feed[0])), np.asarray(mapping(feed[1]))
    ws = np.asarray(ws)
    np.testing.assert_allclose(ws[0, :3], np.repeat(w1[:1], 3, axis=0), atol=1e-5)
    np.testing.assert_allclose(ws[0, 3:], np.repeat(w2[:1], 3, axis=0), atol=1e-5)
    np.testing.assert_allclose(ws[1, [0, 2]], np.repeat(w2[1:], 2, axis=0), atol=1e-5)
    np.testing.assert_allclose(ws[1, [1, 3, 4, 5]], np.repeat(w1[1:], 4, axis=0), atol=1e-5)


def test_synthesis_from_the_generators_styles_gives_its_image(model):
    feed = _feed(model, 3, mix=np.tile(np.array([0, 0, 1, 1, 1, 1], np.float32), (3, 1)))
    image, ws = model.ema_generator(feed, training=False)
    again = model.ema_synthesis([np.asarray(ws), feed[-1]], training=False)
    np.testing.assert_allclose(again, image, atol=1e-5)


def test_noise_moves_pixels_once_its_strength_is_learned(model):
    zeros = np.zeros((2, model.noise_size), np.float32)
    a, _ = model.ema_generator(_feed(model, 2), training=False)
    b, _ = model.ema_generator(_feed(model, 2, noise=zeros), training=False)
    np.testing.assert_array_equal(a, b)  # strength 0 at initialization: noise has no effect yet
    layer = model.ema_synthesis.get_layer("conv28_1")
    layer.noise_strength.assign(0.5)
    c, _ = model.ema_generator(_feed(model, 2), training=False)
    d, _ = model.ema_generator(_feed(model, 2, noise=zeros), training=False)
    assert float(np.max(np.abs(np.asarray(c) - np.asarray(d)))) > 1e-3
    layer.noise_strength.assign(0.0)


def test_training_moves_w_avg_and_the_ema_and_regularizes_lazily():
    import keras

    # half-life 8 images, no ramp-up: at batch 8 the EMA moves half way each step
    model = stylegan.StyleGAN(16, SHAPE, width=8, ema_kimg=0.008, ema_rampup=0.0, seed=1)
    model.compile(d_optimizer=keras.optimizers.Adam(2e-3), g_optimizer=keras.optimizers.Adam(2e-3))
    model.build_optimizers()
    reals = tf.data.Dataset.from_tensors(np.random.default_rng(0).uniform(-1, 1, (8, *SHAPE)).astype(np.float32))
    pairs = [(g, e) for g, e in zip(model.generator.weights, model.ema_generator.weights) if g.trainable]
    before = [g.numpy().copy() for g, _ in pairs]
    history = model.fit(reals.repeat(), steps_per_epoch=1, epochs=1, verbose=0)
    for (g, e), start in zip(pairs, before):  # ema <- lerp(G, ema, 0.5), ema was G's start
        np.testing.assert_allclose(e.numpy(), (g.numpy() + start) / 2, rtol=1e-5, atol=1e-6)
    assert max(np.abs(g.numpy() - start).max() for (g, _), start in zip(pairs, before)) > 0
    assert history.history["r1"][-1] > 0  # D step 0 computes R1 (every 16th)
    w_avg = model.w_average.w_avg.numpy()
    assert np.abs(w_avg).max() > 0  # moved from its zero start
    np.testing.assert_array_equal(model.ema_generator.get_layer("w_average").w_avg.numpy(), w_avg)  # copied
    history = model.fit(reals.repeat(), steps_per_epoch=2, epochs=1, verbose=0)
    assert set(history.history) == {"d_loss", "g_loss", "d_real", "d_fake", "r1"}
    assert history.history["r1"][-1] == 0  # D steps 1 and 2: no R1 (the tracker counts no sample)
    assert int(model.d_optimizer.iterations.numpy()) == 3 and float(model.images_seen.numpy()) == 24


def test_the_synthesis_squashes_the_image_and_the_unbounded_layout_is_refused():
    family = registry.get("stylegan")
    assert family.network_version == 2
    spec = registry.model_spec("stylegan", image_shape=SHAPE, latent_dim=16, learning_rate=2e-3, seed=0, width=8)
    model = family.build(spec)
    assert model.ema_synthesis.layers[-1].name == "squash"
    ws = np.random.default_rng(0).normal(size=(4, 6, progressive.W_DIM)).astype(np.float32) * 3
    noise = np.zeros((4, progressive.noise_size(SHAPE)), np.float32)
    image = np.asarray(model.ema_synthesis([ws, noise], training=False))
    assert np.abs(image).max() <= 1.0 and np.abs(image).max() > 0.1
    with pytest.raises(ValueError, match="network layout 1, which this latentforge no longer builds"):
        family.build(dataclasses.replace(spec, network_version=1))
