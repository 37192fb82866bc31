"""The GAN losses and the fixes for GAN training problems, against hand-computed values."""

import keras
import numpy as np
import pytest

from models import losses, registry
from models.layers import MinibatchStd, ReplayBuffer

REAL = np.array([[0.5], [2.0], [-1.0]], np.float32)
FAKE = np.array([[0.0], [-1.5], [3.0]], np.float32)


def softplus(x):
    return np.log1p(np.exp(x))


# -log sigmoid(r) = softplus(-r); -log(1 - sigmoid(f)) = softplus(f)
EXPECTED = {
    "minimax": (softplus(-REAL[:, 0]) + softplus(FAKE[:, 0]), -softplus(FAKE[:, 0])),
    "ns": (softplus(-REAL[:, 0]) + softplus(FAKE[:, 0]), softplus(-FAKE[:, 0])),
    "lsgan": (0.5 * (REAL[:, 0] - 1) ** 2 + 0.5 * FAKE[:, 0] ** 2, 0.5 * (FAKE[:, 0] - 1) ** 2),
    "hinge": (np.maximum(0, 1 - REAL[:, 0]) + np.maximum(0, 1 + FAKE[:, 0]), -FAKE[:, 0]),
    "wgan-gp": (FAKE[:, 0] - REAL[:, 0], -FAKE[:, 0]),
}


def test_the_options_offer_exactly_the_losses_that_exist():
    from models.families import gan

    assert gan.LOSSES == losses.LOSSES


@pytest.mark.parametrize("kind", losses.LOSSES)
def test_losses_match_hand_computed_values(kind):
    d_expected, g_expected = EXPECTED[kind]
    np.testing.assert_allclose(np.asarray(losses.discriminator_loss(REAL, FAKE, kind)), d_expected, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(losses.generator_loss(FAKE, kind)), g_expected, rtol=1e-5, atol=1e-6)


def test_one_sided_label_smoothing_moves_only_the_real_target():
    smoothed = np.asarray(losses.discriminator_loss(REAL, FAKE, "ns", real_label=0.9))
    r, f = REAL[:, 0], FAKE[:, 0]
    expected = 0.9 * softplus(-r) + 0.1 * softplus(r) + softplus(f)  # BCE with target 0.9; fakes still 0
    np.testing.assert_allclose(smoothed, expected, rtol=1e-5)
    lsgan = np.asarray(losses.discriminator_loss(REAL, FAKE, "lsgan", real_label=0.9))
    np.testing.assert_allclose(lsgan, 0.5 * (r - 0.9) ** 2 + 0.5 * f**2, rtol=1e-5)


def _linear_critic(weight_norm: float, shape=(4, 4, 1)):
    critic = keras.Sequential([keras.Input(shape), keras.layers.Flatten(), keras.layers.Dense(1, use_bias=False)])
    w = np.random.default_rng(0).standard_normal((int(np.prod(shape)), 1)).astype(np.float32)
    critic.layers[-1].set_weights([w / np.linalg.norm(w) * weight_norm])
    return critic


def test_gradient_penalty_is_zero_for_a_unit_norm_gradient_and_positive_otherwise():
    rng = np.random.default_rng(1)
    real, fake = rng.standard_normal((2, 8, 4, 4, 1)).astype(np.float32)
    alpha = rng.uniform(size=8).astype(np.float32)
    unit = np.asarray(losses.gradient_penalty(_linear_critic(1.0), real, fake, alpha))
    assert np.all(np.abs(unit) < 1e-6), unit
    steep = np.asarray(losses.gradient_penalty(_linear_critic(3.0), real, fake, alpha))
    np.testing.assert_allclose(steep, 4.0, rtol=1e-4)  # (3 - 1)^2
    flat = np.asarray(losses.gradient_penalty(_linear_critic(0.0), real, fake, alpha))
    np.testing.assert_allclose(flat, 1.0, rtol=1e-4)  # epsilon keeps sqrt(0) finite: (0 - 1)^2


def test_r1_is_the_squared_gradient_norm_at_the_reals_and_drift_the_squared_output():
    real = np.random.default_rng(2).standard_normal((5, 4, 4, 1)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(losses.r1_penalty(_linear_critic(3.0), real)), 9.0, rtol=1e-4)
    square = keras.Sequential(
        [keras.Input((4, 4, 1)), keras.layers.Lambda(lambda x: keras.ops.sum(x**2, axis=(1, 2, 3)))]
    )
    expected = np.sum((2 * real) ** 2, axis=(1, 2, 3))  # grad of sum x^2 is 2x
    np.testing.assert_allclose(np.asarray(losses.r1_penalty(square, real)), expected, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(losses.drift(REAL)), REAL[:, 0] ** 2)


def test_replay_buffer_keeps_its_size_and_the_newest_fakes():
    buffer = ReplayBuffer(40, (2, 2, 1), ratio=0.5)
    for step in range(5):  # 80 fakes pushed into 40 places
        buffer.push(np.full((16, 2, 2, 1), step, np.float32), np.full(16, step, np.int32))
    assert int(buffer.pushed.numpy()) == 80 and int(buffer.filled()) == 40
    assert buffer.images.shape == (40, 2, 2, 1)
    kept = sorted(np.asarray(buffer.images.numpy())[:, 0, 0, 0].tolist())
    assert kept == [2.0] * 8 + [3.0] * 16 + [4.0] * 16  # the ring overwrote the oldest first
    assert sorted(buffer.labels.numpy().tolist()) == [2] * 8 + [3] * 16 + [4] * 16


@pytest.mark.parametrize("ratio", [0.0, 0.25, 0.5, 1.0])
def test_replay_mixes_old_fakes_at_the_configured_ratio(ratio):
    buffer = ReplayBuffer(64, (2, 2, 1), ratio=ratio, seed=0)
    fresh = np.zeros((16, 2, 2, 1), np.float32)
    mixed, _ = buffer.mix(fresh)  # empty buffer: everything fresh
    assert np.all(np.asarray(mixed) == 0)
    buffer.push(np.full((16, 2, 2, 1), 7.0, np.float32))
    buffer.push(np.full((16, 2, 2, 1), 7.0, np.float32))
    mixed, labels = buffer.mix(fresh, np.full(16, 3, np.int32))
    old_rows = np.asarray(mixed)[:, 0, 0, 0] == 7.0
    assert old_rows.sum() == round(ratio * 16)
    assert np.all(np.asarray(labels)[~old_rows] == 3)


def test_minibatch_std_sees_a_collapsed_batch():
    layer = MinibatchStd()
    varied = np.random.default_rng(0).standard_normal((8, 7, 7, 4)).astype(np.float32)
    collapsed = np.repeat(varied[:1], 8, axis=0)
    out_varied, out_collapsed = np.asarray(layer(varied)), np.asarray(layer(collapsed))
    assert out_varied.shape == (8, 7, 7, 5)
    np.testing.assert_array_equal(out_varied[..., :4], varied)
    assert out_varied[..., 4].min() > 0.5  # ~1 for unit-variance features
    assert out_collapsed[..., 4].max() < 1e-3  # only the epsilon's sqrt remains
    discriminator = registry.build(
        "dcgan", image_shape=(28, 28, 1), latent_dim=4, learning_rate=1e-3, seed=0, options={"minibatch_std": True}
    ).discriminator
    image = np.random.default_rng(1).uniform(-1, 1, (1, 28, 28, 1)).astype(np.float32)
    other = np.random.default_rng(2).uniform(-1, 1, (7, 28, 28, 1)).astype(np.float32)
    alone = np.asarray(discriminator(np.repeat(image, 8, axis=0)))[0]
    in_variety = np.asarray(discriminator(np.concatenate([image, other])))[0]
    assert abs(float(alone[0] - in_variety[0])) > 1e-5  # the same image scores differently in a collapsed batch


def test_generator_ema_follows_the_formula():
    model = registry.build(
        "dcgan", image_shape=(28, 28, 1), latent_dim=4, learning_rate=1e-2, seed=0, options={"ema": 0.9}
    )
    before = [v.numpy().copy() for v in model.ema_generator.trainable_weights or model.ema_generator.weights]
    trainable_before = [v.numpy().copy() for v in model.generator.trainable_weights]
    np.testing.assert_array_equal(before[0], trainable_before[0])  # starts as a copy
    model.train_step(np.random.default_rng(0).uniform(-1, 1, (8, 28, 28, 1)).astype(np.float32))
    trainable = {id(v) for v in model.generator.trainable_weights}
    pairs = [(e, g) for e, g in zip(model.ema_generator.weights, model.generator.weights) if id(g) in trainable]
    first = 1 / 10  # warm-up: decay min(0.9, (1 + n) / (10 + n)) after n = 0 updates
    for (ema, current), old in zip(pairs, trainable_before):
        np.testing.assert_allclose(ema.numpy(), first * old + (1 - first) * current.numpy(), rtol=1e-5, atol=1e-6)
    assert any(not np.allclose(e.numpy(), g.numpy()) for e, g in pairs)  # EMA lags the raw weights
    model.g_optimizer.iterations.assign(500)  # after n = 500 updates (501/510 > 0.9) the decay is 0.9
    old = [e.numpy().copy() for e, _ in pairs]
    model.train_step(np.random.default_rng(0).uniform(-1, 1, (8, 28, 28, 1)).astype(np.float32))
    for (ema, current), previous in zip(pairs, old):
        np.testing.assert_allclose(ema.numpy(), 0.9 * previous + 0.1 * current.numpy(), rtol=1e-5, atol=1e-6)
    assert model.exported_generator is model.ema_generator


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["gan", "cdcgan"])
def test_every_gan_family_trains_with_every_loss(kind):
    rng = np.random.default_rng(0)
    for loss in losses.LOSSES:
        model = registry.build(
            kind,
            image_shape=(28, 28, 1),
            latent_dim=4,
            learning_rate=1e-3,
            seed=0,
            options={"gan_loss": loss, "critic_steps": 2},
        )
        images = rng.uniform(-1, 1, (8, 28, 28, 1)).astype(np.float32)
        batch = (images, rng.integers(0, 10, 8).astype(np.int32)) if kind == "cdcgan" else images
        logs = model.train_step(batch)
        assert all(np.isfinite(float(v)) for v in logs.values()), (loss, logs)
        assert ("gradient_penalty" in logs) == (loss == "wgan-gp")


@pytest.mark.parametrize("ratio", [1.0, 4.0])
def test_ttur_steps_the_discriminator_at_its_own_rate(ratio):
    """Adam's first update moves each weight by its learning rate (m/sqrt(v) = sign of the
    gradient), so the largest change of D's weights is D's rate, G's is G's."""
    model = registry.build(
        "dcgan", image_shape=(28, 28, 1), latent_dim=4, learning_rate=1e-3, seed=0, options={"d_lr_ratio": ratio}
    )
    d_before = [v.numpy().copy() for v in model.discriminator.trainable_weights]
    g_before = [v.numpy().copy() for v in model.generator.trainable_weights]
    model.train_step(np.random.default_rng(0).uniform(-1, 1, (8, 28, 28, 1)).astype(np.float32))

    def largest_step(weights, before):
        return max(float(np.abs(v.numpy() - b).max()) for v, b in zip(weights, before))

    assert largest_step(model.discriminator.trainable_weights, d_before) == pytest.approx(ratio * 1e-3, rel=1e-3)
    assert largest_step(model.generator.trainable_weights, g_before) == pytest.approx(1e-3, rel=1e-3)


def test_ttur_scales_a_learning_rate_schedule_and_rejects_a_zero_ratio():
    from models.families.gan import GanOptions, scaled

    cosine = keras.optimizers.schedules.CosineDecay(1e-3, decay_steps=100, alpha=0.05)
    d_rate = scaled(cosine, 4.0)
    for step in (0, 50, 100):
        assert float(d_rate(step)) == pytest.approx(4 * float(cosine(step)), rel=1e-6)
    assert scaled(cosine, 1.0) is cosine
    with pytest.raises(ValueError, match="d_lr_ratio must be above 0; e.g. d_lr_ratio=4"):
        GanOptions(d_lr_ratio=0.0).check(batch_size=32)
