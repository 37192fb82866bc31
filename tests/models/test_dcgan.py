import keras
import numpy as np
import pytest

from models import dcgan, losses, registry


def _weights(network):
    return [v.numpy() for v in network.trainable_variables]


def _changed(before, after):
    return any(not np.array_equal(b, a) for b, a in zip(before, after))


@pytest.fixture()
def model():
    # the course's loss, whose D outputs are probabilities (the family's default is hinge)
    options = {"gan_loss": "ns"}
    return registry.build("dcgan", image_shape=(28, 28, 1), latent_dim=8, learning_rate=1e-3, seed=0, options=options)


def _real(batch=16):
    return np.random.default_rng(0).uniform(-1, 1, (batch, 28, 28, 1)).astype(np.float32)


def test_phase_one_updates_discriminator_only(model):
    g0, d0 = _weights(model.generator), _weights(model.discriminator)
    model._discriminator_step(_real())
    assert _changed(d0, _weights(model.discriminator))
    assert not _changed(g0, _weights(model.generator))


def test_phase_two_updates_generator_only(model):
    g0, d0 = _weights(model.generator), _weights(model.discriminator)
    model._generator_step(16)
    assert _changed(g0, _weights(model.generator))
    assert not _changed(d0, _weights(model.discriminator))


def test_train_step_reports_both_phases(model):
    logs = model.train_step(_real())
    assert set(logs) == {"d_loss", "g_loss", "d_real", "d_fake"}
    # D(x) and D(G(z)) are probabilities; an untrained D is near the 1/2 of the equilibrium.
    for key in ("d_real", "d_fake"):
        assert 0.2 < float(logs[key]) < 0.8


def test_the_logged_losses_are_the_course_losses_of_what_d_said(model):
    """With D's logit layer made constant (kernel 0, bias b), D says sigmoid(b) to every image, so
    the logs must be exactly the course's losses of that: -log s(b) - log(1 - s(b)) for D, and
    about -log s(b) for G (its phase runs after D's first Adam step)."""
    b = 0.3
    logit = model.discriminator.get_layer("logit")
    logit.kernel.assign(np.zeros(logit.kernel.shape, np.float32))
    logit.bias.assign(np.full(logit.bias.shape, b, np.float32))
    logs = {key: float(value) for key, value in model.train_step(_real()).items()}
    p = 1.0 / (1.0 + np.exp(-b))
    assert logs["d_real"] == pytest.approx(p, abs=1e-6) and logs["d_fake"] == pytest.approx(p, abs=1e-6)
    assert logs["d_loss"] == pytest.approx(-np.log(p) - np.log(1.0 - p), abs=1e-5)
    # G's phase runs after D's first Adam step, which lowered D's scores of fakes: G's loss rose a little
    assert -np.log(p) < logs["g_loss"] < -np.log(p) + 0.1


def test_the_dcgan_families_default_to_the_hinge_loss_and_the_others_keep_theirs():
    from pipeline.config import Config

    built = registry.build("dcgan", image_shape=(28, 28, 1), latent_dim=8, learning_rate=1e-3, seed=0)
    assert built.loss_kind == "hinge"
    assert Config.from_dict({"model": "cdcgan"}).gan_loss == "hinge"
    assert Config.from_dict({"model": "gan"}).gan_loss == "ns"  # the original GAN's
    assert Config.from_dict({"model": "dcgan", "gan_loss": "ns"}).gan_loss == "ns"  # given wins
    assert Config.from_dict({"model": "dcgan"}).ema == 0.0
    keras.backend.clear_session()


@pytest.mark.parametrize("side, start", [(28, 7), (32, 8), (56, 7), (64, 8), (112, 7), (128, 8)])
@pytest.mark.parametrize("channels", [1, 3])
def test_every_side_builds_with_widths_that_grow_towards_the_start(side, start, channels):
    width, count = 8, dcgan.levels(side)
    generator = dcgan.build_generator(4, (side, side, channels), width=width)
    assert generator.output.shape[1:] == (side, side, channels)
    assert start << count == side
    dense = generator.layers[1]
    assert dense.kernel.shape == (4, start * start * width * 2 ** (count - 1))
    hidden = [layer.filters for layer in generator.layers if isinstance(layer, keras.layers.Conv2DTranspose)]
    assert hidden == [width * 2 ** (count - 1 - i) for i in range(1, count)] + [channels]
    discriminator = dcgan.build_discriminator((side, side, channels), width=width)
    convs = [layer for layer in discriminator.layers if isinstance(layer, keras.layers.Conv2D)]
    assert [c.filters for c in convs] == [width * 2**i for i in range(count)]
    assert convs[-1].output.shape[1:3] == (start, start)
    keras.backend.clear_session()


def test_the_28_pixel_layout_is_the_one_trained_models_saved():
    # network_version 5's weights, in order: a model trained before sides generalised still loads
    generator = dcgan.build_generator(100, (28, 28, 1), width=64)
    assert [tuple(w.shape) for w in generator.weights] == [
        (100, 7 * 7 * 128), (6272,), (6272,), (6272,), (6272,),
        (3, 3, 64, 128), (64,), (64,), (64,), (64,),
        (5, 5, 1, 64), (1,),
    ]  # fmt: skip
    discriminator = dcgan.build_discriminator((28, 28, 1), width=64)
    assert [tuple(w.shape) for w in discriminator.weights] == [
        (5, 5, 1, 64), (64,), (3, 3, 64, 128), (128,), (7 * 7 * 128, 1), (1,),
    ]  # fmt: skip
    keras.backend.clear_session()


def test_generator_shapes_and_range():
    generator = dcgan.build_generator(8, (32, 32, 3))
    images = np.asarray(generator(np.random.default_rng(0).standard_normal((5, 8)).astype("float32")))
    assert images.shape == (5, 32, 32, 3)
    assert images.min() >= -1 and images.max() <= 1


def test_losses_match_hand_computed_values():
    real, fake = np.array([[0.0], [2.0]], np.float32), np.array([[0.0], [-1.0]], np.float32)
    softplus = lambda x: np.log1p(np.exp(x))  # noqa: E731  -log sigmoid(x) = softplus(-x)
    expected_d = softplus(-real[:, 0]) + softplus(fake[:, 0])
    np.testing.assert_allclose(np.asarray(losses.discriminator_loss(real, fake)), expected_d, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(losses.generator_loss(fake)), softplus(-fake[:, 0]), rtol=1e-5)


def test_seeded_builds_are_identical():
    a = registry.build("dcgan", image_shape=(28, 28, 1), latent_dim=8, learning_rate=1e-3, seed=3)
    b = registry.build("dcgan", image_shape=(28, 28, 1), latent_dim=8, learning_rate=1e-3, seed=3)
    for x, y in zip(_weights(a.generator), _weights(b.generator)):
        np.testing.assert_array_equal(x, y)
    keras.backend.clear_session()


def test_one_discriminator_call_on_real_and_fake_equals_two():
    """The step calls a discriminator that mixes no examples, or mixes them only in groups that
    the real and fake halves split evenly (mini-batch std over groups of 4), once on [real; fake]:
    the same outputs as two calls. A whole-batch statistic would be called twice."""
    from models import gan
    from models.layers import MinibatchStd

    plain = dcgan.build_discriminator((28, 28, 1), width=8, dropout_rate=0.0)
    grouped = dcgan.build_discriminator((28, 28, 1), width=8, dropout_rate=0.0, minibatch_std=True)
    assert gan.example_group(plain) == 1 and gan.example_group(grouped) == 4
    whole = keras.Sequential([keras.Input((28, 28, 1)), MinibatchStd(0), keras.layers.Flatten(), keras.layers.Dense(1)])
    assert gan.example_group(whole) is None
    real, fake = _real(8), _real(16)[8:] * 0.1  # halves of different spread
    for discriminator in (plain, grouped):
        joint = discriminator(np.concatenate([real, fake]), training=True).numpy()
        np.testing.assert_allclose(joint[:8], discriminator(real, training=True).numpy(), atol=1e-5)
        np.testing.assert_allclose(joint[8:], discriminator(fake, training=True).numpy(), atol=1e-5)
    mixed = whole(np.concatenate([real, fake])).numpy()
    assert not np.allclose(mixed[:8], whole(real).numpy(), atol=1e-4)  # a whole-batch statistic straddles
    with_std = registry.build(
        "dcgan", image_shape=(28, 28, 1), latent_dim=8, learning_rate=1e-3, seed=0, options={"minibatch_std": True}
    )
    assert with_std.joint_call(8, fake) and not with_std.joint_call(6, fake[:6])  # 6 does not split into 4s


def test_grouped_minibatch_std_is_each_groups_own_statistic():
    from models.layers import MinibatchStd

    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(0, 1, (4, 2, 2, 3)), np.zeros((4, 2, 2, 3))]).astype(np.float32)
    out = np.asarray(MinibatchStd(4)(x))[..., -1]
    expected = np.sqrt(x[:4].var(axis=0) + 1e-8).mean()
    np.testing.assert_allclose(out[:4], expected, rtol=1e-5)
    np.testing.assert_allclose(out[4:], 1e-4, rtol=1e-3)  # a collapsed group: only the epsilon's sqrt
    odd = np.asarray(MinibatchStd(4)(x[:6]))[..., -1]  # 6 examples: one group, the whole batch
    np.testing.assert_allclose(odd, np.sqrt(x[:6].var(axis=0) + 1e-8).mean(), rtol=1e-5)
