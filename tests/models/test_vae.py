import math

import numpy as np
import pytest

from models import registry, vae


@pytest.fixture()
def model():
    return registry.build("vae", image_shape=(28, 28, 1), latent_dim=4, learning_rate=1e-3, seed=0)


def test_kl_matches_closed_form_on_known_inputs():
    z_mean = np.array([[1.0, 2.0], [0.0, 0.0]], np.float32)
    sigma = np.array([[1.0, 2.0], [1.0, 0.5]], np.float32)
    z_log_var = np.log(sigma**2)
    # KL(N(m, s^2) || N(0, 1)) = log(1/s) + (s^2 + m^2) / 2 - 1/2, summed over dimensions
    expected = [
        sum(math.log(1 / s) + (s * s + m * m) / 2 - 0.5 for m, s in zip(mr, sr)) for mr, sr in zip(z_mean, sigma)
    ]
    np.testing.assert_allclose(np.asarray(vae.kl_divergence(z_mean, z_log_var)), expected, rtol=1e-5)
    assert expected[0] == pytest.approx(3.3068528, rel=1e-6)


def test_bernoulli_nll_is_summed_binary_cross_entropy_in_nats():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (2, 28, 28, 1)).astype(np.float32)
    logits = rng.normal(0, 2, (2, 28, 28, 1)).astype(np.float32)
    p = 1 / (1 + np.exp(-logits))
    expected = -(x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(2, -1).sum(axis=1)
    np.testing.assert_allclose(np.asarray(vae.bernoulli_nll(x, logits)), expected, rtol=1e-4)


def test_test_step_changes_no_weight(model):
    images = np.random.default_rng(0).uniform(0, 1, (8, 28, 28, 1)).astype(np.float32)
    before = [v.numpy() for v in model.encoder.weights + model.decoder.weights]
    logs = model.test_step(images)
    after = [v.numpy() for v in model.encoder.weights + model.decoder.weights]
    assert all(np.array_equal(b, a) for b, a in zip(before, after))
    assert float(logs["loss"]) == pytest.approx(float(logs["reconstruction_loss"]) + float(logs["kl_loss"]), rel=1e-5)


@pytest.mark.slow
def test_loss_falls_when_training_on_real_images(spec):
    from pipeline import inputs

    model = registry.build("vae", image_shape=spec.image_shape, latent_dim=8, learning_rate=1e-3, seed=0)
    ds = inputs.training_dataset(spec, batch_size=64, value_range="unit", seed=0, examples=1024)
    first = model.evaluate(ds, verbose=0, return_dict=True)["loss"]
    model.fit(ds, epochs=3, verbose=0, shuffle=False)
    last = model.evaluate(ds, verbose=0, return_dict=True)["loss"]
    assert last < first - 50  # nats per image: from ~543 (random decoder) to well below


def test_generator_outputs_unit_range(model):
    images = np.asarray(model.generator(np.zeros((3, 4), np.float32)))
    assert images.shape == (3, 28, 28, 1)
    assert images.min() >= 0 and images.max() <= 1


@pytest.mark.slow
def test_iwae_bound_is_below_the_elbo_in_nats_and_tightens_with_k(spec):
    from pipeline import inputs

    model = registry.build("vae", image_shape=spec.image_shape, latent_dim=8, learning_rate=1e-3, seed=0)
    ds = inputs.training_dataset(spec, batch_size=64, value_range="unit", seed=0, examples=1024, binarize=True)
    model.fit(ds, epochs=2, verbose=0, shuffle=False)
    images = inputs.binarized_test_images(spec)[:128]
    elbo = model.evaluate(images, batch_size=128, verbose=0, return_dict=True)["loss"]
    bounds = {k: float(np.mean(np.asarray(model.iwae_nll(images, k)))) for k in (1, 10, 100)}
    assert bounds[1] == pytest.approx(elbo, rel=0.02)  # k = 1 is a one-sample ELBO
    assert bounds[100] < bounds[10] < bounds[1]  # tighter with more samples
    assert bounds[100] < elbo  # log-likelihood bound >= ELBO, i.e. <= in nats


def test_dynamic_binarization_draws_new_pixels_each_epoch(spec):
    from pipeline import inputs

    ds = inputs.training_dataset(spec, batch_size=8, value_range="unit", seed=0, examples=8, binarize=True)
    first, second = (np.asarray(next(iter(ds))) for _ in range(2))
    assert set(np.unique(first)) <= {0.0, 1.0}
    assert not np.array_equal(first, second)


@pytest.mark.slow
def test_mixed_bfloat16_training_keeps_float32_weights_and_outputs(spec):
    """precision=mixed_bfloat16: bf16 compute, float32 variables, float32 logits and latents; the
    weights load into a float32 model (what export and evaluate rebuild) and give close outputs."""
    import keras

    from pipeline import inputs
    from pipeline.loop import precision_policy

    with precision_policy("mixed_bfloat16"):
        mixed = registry.build("vae", image_shape=spec.image_shape, latent_dim=8, learning_rate=1e-3, seed=0, width=8)
    assert keras.mixed_precision.global_policy().name == "float32"  # restored
    assert mixed.decoder.layers[1].compute_dtype == "bfloat16"
    assert all(v.dtype == "float32" for v in mixed.weights)
    ds = inputs.training_dataset(spec, batch_size=64, value_range="unit", seed=0, examples=512, binarize=True)
    history = mixed.fit(ds, epochs=2, verbose=0, shuffle=False).history["loss"]
    assert history[-1] < history[0]
    images = next(iter(ds))
    z_mean, _ = mixed.encoder(images)
    assert z_mean.dtype == "float32" and mixed.decoder(z_mean).dtype == "float32"

    plain = registry.build("vae", image_shape=spec.image_shape, latent_dim=8, learning_rate=1e-3, seed=1, width=8)
    plain.set_weights(mixed.get_weights())
    np.testing.assert_allclose(np.asarray(plain(images)), np.asarray(mixed(images)), atol=0.05)


@pytest.mark.parametrize(
    "mean, log_scale", [(0.0, 0.0), (0.3, -2.0), (-0.98, -3.0), (2 * 191 / 255 - 1, -7.0), (1.2, 1.0)]
)
def test_the_discretized_logistic_gives_the_256_levels_probabilities_that_sum_to_one(mean, log_scale):
    levels = (np.arange(256, dtype=np.float32) / 255.0).reshape(256, 1, 1, 1)  # one subpixel per image
    outputs = np.broadcast_to(np.array([mean, log_scale], np.float32), (256, 1, 1, 2))
    p = np.exp(-np.asarray(vae.logistic_nll(levels, outputs), np.float64))
    assert p.sum() == pytest.approx(1.0, abs=2e-3)
    centre = round((mean + 1.0) * 127.5)  # of the inner levels (the end levels hold the tails), the nearest
    if 0 < centre < 255:  # to the mean is the likeliest
        assert np.argmax(p[1:255]) + 1 == centre
    if log_scale < -5:  # a sharp logistic centred on a level puts most of its mass there
        assert p[centre] > 0.95


def test_the_logistic_nll_of_a_colour_image_sums_over_every_subpixel():
    images = np.random.default_rng(0).integers(0, 256, (2, 4, 4, 3)).astype(np.float32) / 255.0
    outputs = np.concatenate([np.zeros((2, 4, 4, 3)), np.full((2, 4, 4, 3), 0.5)], axis=-1).astype(np.float32)
    whole = np.asarray(vae.logistic_nll(images, outputs))
    per_channel = sum(np.asarray(vae.logistic_nll(images[..., c : c + 1], outputs[..., c::3])) for c in range(3))
    np.testing.assert_allclose(whole, per_channel, rtol=1e-5)


def test_a_colour_vae_is_scored_in_bits_per_dimension_and_promoted_on_its_iwae_bound():
    from models.registry import EvaluationContext
    from pipeline.config import Config

    shape = (32, 32, 3)
    model = registry.build("vae", image_shape=shape, latent_dim=4, learning_rate=1e-3, seed=0, width=8)
    assert model.likelihood == "logistic"  # auto: colour images get the 8-bit likelihood
    images = np.random.default_rng(0).integers(0, 256, (6, *shape)).astype(np.float32) / 255.0
    context = EvaluationContext(
        runtime=None,
        features=None,
        real=None,
        score=None,
        sample_features=None,
        samples=0,
        seed=0,
        load_model=lambda: model,
        load_test_images=lambda: images,
        config=Config(iwae_k=4, iwae_examples=0),
    )
    results = registry.get("vae").evaluate(context).metrics
    dims = math.prod(shape) * math.log(2.0)
    assert results["test_iwae_bpd"] == pytest.approx(results["test_iwae_nll"] / dims, rel=1e-6)
    assert results["test_loss_bpd"] == pytest.approx(results["test_loss"] / dims, rel=1e-6)
    assert 0 < results["test_iwae_bpd"] < 16  # untrained on uniform noise: near the 8 bits of a uniform model
    colour = registry.model_spec("vae", image_shape=shape, latent_dim=4, learning_rate=1e-3, seed=0)
    grey = registry.model_spec("vae", image_shape=(28, 28, 1), latent_dim=4, learning_rate=1e-3, seed=0)
    assert registry.get("vae").primary_metric_of(colour) == "test_iwae_bpd"  # what promotion compares
    assert registry.get("vae").primary_metric_of(grey) == "test_iwae_nll"
