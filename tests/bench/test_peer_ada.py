"""The keras-io ADA peer (bench/peer_ada.py) trains as its source does: one step equals the
source's train_step written out here, its networks train in training mode (batch norm learns,
dropout on), with Adam(2e-4, 0.5) at batch 128, p moves by the accuracy error over 1000 and the
generator's gradient flows through the augmentation."""

from __future__ import annotations

import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench import peer_ada  # noqa: E402
from tests.bench.test_peer import _twin, _without_dropout  # noqa: E402  (the same network copies)
from tests.training_mode import modal_layers, moving_statistics, record_modes, unmoved  # noqa: E402

SHAPE = (64, 64, 3)
BATCH = 8


def test_one_step_equals_the_sources_train_step(monkeypatch):
    monkeypatch.setattr(peer_ada, "TARGET_ACCURACY", 2.0)  # out of reach: p stays 0, the augmenter passes all
    keras.utils.set_random_seed(0)
    model = peer_ada.PeerADA(SHAPE)
    model.compile()
    _without_dropout(model.discriminator)
    generator, discriminator = _twin(model.generator), _without_dropout(_twin(model.discriminator))
    ema = [w.numpy() for w in model.ema_generator.weights]
    g_opt, d_opt = keras.optimizers.Adam(2e-4, 0.5), keras.optimizers.Adam(2e-4, 0.5)
    rng = np.random.default_rng(0)
    real = rng.uniform(0, 1, (BATCH,) + SHAPE).astype(np.float32)
    latents = rng.standard_normal((BATCH, peer_ada.NOISE_SIZE)).astype(np.float32)
    step = tf.function(model.source_step)
    g_losses = []
    for _ in range(2):  # the second step starts from moved statistics, slots and EMA
        logs = step(real, latents)
        # the source's step at p = 0 (its augmenter passes every image through)
        with tf.GradientTape(persistent=True) as tape:
            generated = generator(latents, training=True)
            real_logits = discriminator(real, training=True)
            generated_logits = discriminator(generated, training=True)
            g_loss = tf.reduce_mean(keras.losses.binary_crossentropy(tf.ones((BATCH, 1)), generated_logits, True))
            d_loss = tf.reduce_mean(
                keras.losses.binary_crossentropy(
                    tf.concat([tf.ones((BATCH, 1)), tf.zeros((BATCH, 1))], 0),
                    tf.concat([real_logits, generated_logits], 0),
                    True,
                )
            )
        g_losses.append(float(g_loss))
        g_grads = tape.gradient(g_loss, generator.trainable_weights)
        d_grads = tape.gradient(d_loss, discriminator.trainable_weights)
        g_opt.apply_gradients(zip(g_grads, generator.trainable_weights))
        d_opt.apply_gradients(zip(d_grads, discriminator.trainable_weights))
        ema = [0.99 * e + 0.01 * w.numpy() for e, w in zip(ema, generator.weights)]
        assert float(model.augmenter.probability) == 0.0
    np.testing.assert_allclose(float(logs["g_loss"]), np.mean(g_losses), rtol=1e-4)  # the tracker's mean
    ours, theirs_all = model.generator.weights + model.discriminator.weights, generator.weights + discriminator.weights
    for mine, theirs in zip(ours, theirs_all, strict=True):
        np.testing.assert_allclose(mine.numpy(), theirs.numpy(), atol=2e-5, err_msg=mine.path)
    for mine, expected in zip(model.ema_generator.weights, ema, strict=True):
        np.testing.assert_allclose(mine.numpy(), expected, atol=2e-5, err_msg=mine.path)


def test_p_moves_by_the_accuracy_error_over_1000_steps():
    augmenter = peer_ada.AdaptiveAugmenter(SHAPE)
    augmenter.probability.assign(0.5)
    augmenter.update(tf.constant([[2.0], [1.0], [-1.0], [3.0], [0.5]]))  # 4 of 5 right: accuracy 0.8
    assert float(augmenter.probability) == pytest.approx(0.5)
    augmenter.update(tf.constant([[2.0], [1.0], [1.0], [3.0], [0.5]]))  # accuracy 1.0
    assert float(augmenter.probability) == pytest.approx(0.5 + 0.2 / 1000)
    augmenter.probability.assign(0.0)
    augmenter.update(tf.constant([[-1.0], [-1.0]]))  # accuracy 0: clipped at 0
    assert float(augmenter.probability) == 0.0
    images = np.random.default_rng(1).uniform(0, 1, (BATCH,) + SHAPE).astype(np.float32)
    np.testing.assert_array_equal(augmenter(images, training=True).numpy(), images)  # p = 0: untouched
    augmenter.probability.assign(1.0)
    changed = augmenter(images, training=True).numpy()
    assert all(not np.allclose(a, b) for a, b in zip(changed, images))  # p = 1: every image augmented
    np.testing.assert_array_equal(augmenter(images, training=False).numpy(), images)  # inference: never


def test_the_generators_gradient_flows_through_the_augmentation():
    keras.utils.set_random_seed(0)
    model = peer_ada.PeerADA(SHAPE)
    model.augmenter.probability.assign(1.0)
    latents = tf.random.normal((BATCH, peer_ada.NOISE_SIZE))
    with tf.GradientTape() as tape:
        logits = model.discriminator(model.augmenter(model.generator(latents, training=True), training=True))
        loss = tf.reduce_mean(logits)
    gradients = tape.gradient(loss, model.generator.trainable_weights)
    assert all(g is not None and np.all(np.isfinite(g.numpy())) for g in gradients)
    assert all(float(tf.reduce_max(tf.abs(g))) > 0 for g in gradients)


def test_fit_trains_in_training_mode_with_the_sources_optimizer_and_batch():
    from bench.equal_time import batch_size_of

    assert batch_size_of("peer-ada", 32) == peer_ada.BATCH_SIZE == 128
    keras.utils.set_random_seed(0)
    model = peer_ada.PeerADA(SHAPE)
    model.compile()
    for optimizer in (model.generator_optimizer, model.discriminator_optimizer):
        assert isinstance(optimizer, keras.optimizers.Adam)
        assert float(optimizer.learning_rate) == pytest.approx(2e-4) and optimizer.beta_1 == 0.5
    modes = record_modes(model)
    before = moving_statistics(model.generator) | moving_statistics(model.discriminator)
    real = np.random.default_rng(0).uniform(0, 1, (BATCH,) + SHAPE).astype(np.float32)
    history = model.fit(tf.data.Dataset.from_tensors(real).repeat(), steps_per_epoch=2, epochs=1, verbose=0)
    after = moving_statistics(model.generator) | moving_statistics(model.discriminator)
    assert not unmoved(before, after), "a batch norm learned no statistics"
    for network in (model.generator, model.discriminator):  # every call in training mode
        for layer in modal_layers(network):
            assert modes[id(layer)] and all(modes[id(layer)]), layer.path
    assert modal_layers(model.discriminator)[-1].rate == 0.4
    assert set(history.history) >= {"g_loss", "d_loss", "real_acc", "aug_p"}
    # what is scored and exported: the EMA generator, in [0, 1]
    assert model.exported_generator is model.ema_generator and model.value_range == "unit"
    out = model.exported_generator(tf.random.normal((4, peer_ada.NOISE_SIZE))).numpy()
    assert out.shape == (4,) + SHAPE and out.min() >= 0.0 and out.max() <= 1.0


def test_a_study_checkpoint_saves_and_restores_every_weight_p_and_optimizer_slot(tmp_path):
    """As bench/family_study.py keeps and resumes a unit: save_weights, then a new model whose
    optimizer slots are built loads them."""
    keras.utils.set_random_seed(0)
    model = peer_ada.PeerADA(SHAPE)
    model.compile()
    images = np.random.default_rng(2).uniform(0, 1, (BATCH,) + SHAPE).astype(np.float32)
    model.fit(images, batch_size=BATCH, epochs=1, verbose=0)
    model.augmenter.probability.assign(0.25)
    model.save_weights(str(tmp_path / "state.weights.h5"))
    again = peer_ada.PeerADA(SHAPE, seed=1)
    again.compile()
    again.build_optimizers()
    again.load_weights(str(tmp_path / "state.weights.h5"))
    assert float(again.augmenter.probability) == 0.25
    for network in ("generator", "ema_generator", "discriminator"):
        for a, b in zip(getattr(model, network).weights, getattr(again, network).weights):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(model.generator_optimizer.variables, again.generator_optimizer.variables):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
