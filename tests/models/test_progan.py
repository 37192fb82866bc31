"""Progressive growing: the schedule, the fade-in's continuity, growth during fit, and resuming
mid-phase with the same level, alpha, optimizer state and EMA."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from models import progan, registry

SHAPE = (28, 28, 1)


def _model(phase_images=64, seed=0):
    model = progan.ProGAN(8, SHAPE, width=8, phase_images=phase_images, seed=seed)
    model.compile(d_optimizer=keras.optimizers.Adam(1e-3), g_optimizer=keras.optimizers.Adam(1e-3))
    model.build_optimizers()
    return model


@pytest.mark.parametrize(
    "images, level, alpha",
    [(0, 0, 1.0), (99, 0, 1.0), (150, 1, 0.5), (250, 1, 1.0), (350, 2, 0.5), (500, 2, 1.0), (10_000, 2, 1.0)],
)
def test_schedule_stabilize_then_fade_in_each_level(images, level, alpha):
    model = _model(phase_images=100)
    assert model.level_at(images) == level
    assert float(model.alpha_at(np.float32(images))) == pytest.approx(alpha)
    model.images_seen.assign(images)
    assert model.alpha == pytest.approx(alpha)  # the same in Python


def test_fade_in_starts_where_the_level_below_ends():
    model = _model()
    z = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    low = np.asarray(model.generator(z, level=0, alpha=1.0))
    assert low.shape == (3, 28, 28, 1)
    blocks = low.reshape(3, 7, 4, 7, 4, 1)
    assert np.allclose(blocks, blocks[:, :, :1, :, :1])  # 7x7, nearest-upsampled
    np.testing.assert_allclose(model.generator(z, level=1, alpha=0.0), low, atol=1e-5)
    x = np.random.default_rng(1).uniform(-1, 1, (3, *SHAPE)).astype(np.float32)
    np.testing.assert_allclose(
        model.discriminator(x, level=1, alpha=0.0), model.discriminator(x, level=0, alpha=1.0), atol=1e-4
    )
    np.testing.assert_allclose(
        model.discriminator(x, level=2, alpha=0.0), model.discriminator(x, level=1, alpha=1.0), atol=1e-4
    )


def test_fit_grows_through_the_levels_and_logs_level_and_alpha():
    model = _model(phase_images=32)
    reals = tf.data.Dataset.from_tensors(np.zeros((16, *SHAPE), np.float32)).repeat()
    history = model.fit(reals, steps_per_epoch=4, epochs=3, verbose=0)
    assert history.history["level"] == [1.0, 2.0, 2.0]  # 64, 128, 192 images seen
    assert history.history["resolution"] == [14.0, 28.0, 28.0]
    assert history.history["alpha"][0] == pytest.approx(0.5)  # the last step began at 48 of phase 32-64
    assert model.level == 2 and float(model.images_seen.numpy()) == 192
    image = np.asarray(model.exported_generator(np.zeros((2, 8), np.float32)))
    assert image.shape == (2, 28, 28, 1) and np.isfinite(image).all()


def test_resume_mid_phase_restores_level_alpha_and_state(tmp_path):
    reals = tf.data.Dataset.from_tensors(np.random.default_rng(0).uniform(-1, 1, (16, *SHAPE)).astype("float32"))
    model = _model(phase_images=64)
    model.fit(reals.repeat(), steps_per_epoch=6, epochs=1, verbose=0)  # 96 images: fading into 14x14
    path = str(tmp_path / "ckpt.weights.h5")
    model.save_weights(path)
    again = _model(phase_images=64, seed=5)
    again.load_weights(path)
    assert float(again.images_seen.numpy()) == 96
    assert again.level_at(96) == 1 and float(again.alpha_at(again.images_seen)) == pytest.approx(0.5)
    for a, b in zip(model.ema_generator.weights, again.ema_generator.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert int(again.d_optimizer.iterations.numpy()) == 6
    # a model only loaded (as the export and evaluate stages load one) exports what was trained
    z = np.random.default_rng(2).standard_normal((2, 8)).astype(np.float32)
    np.testing.assert_allclose(again.exported_generator(z), model.exported_generator(z), atol=1e-6)
    trained = model.ema_generator(z, level=1, alpha=0.5)
    np.testing.assert_allclose(again.exported_generator(z), trained, atol=1e-6)
    assert not np.allclose(trained, model.ema_generator(z, level=0, alpha=1.0), atol=1e-3)
    again.fit(reals.repeat(), steps_per_epoch=1, epochs=1, verbose=0)
    assert again.level == 1 and float(again.images_seen.numpy()) == 112


def test_family_options_and_export_signature():
    model = registry.build("progan", image_shape=SHAPE, latent_dim=8, learning_rate=1e-3, seed=0, width=8)
    assert model.ema_decay == 0.999 and model.phase_images == 60_000  # the family's defaults
    export = registry.get("progan").exports(
        model, registry.model_spec("progan", image_shape=SHAPE, latent_dim=8, learning_rate=1e-3, seed=0, width=8)
    )[0]
    assert [t.name for t in export.signature.inputs] == ["z"]
