"""Convolutional VAE (Kingma & Welling 2013) with a Bernoulli or a discretized logistic decoder.

Encoder: image -> (z_mean, z_log_var). Reparameterization: z = mean + exp(log_var / 2) * eps.
Decoder: z -> per-pixel parameters of p(x|z), by ``likelihood``:
  "bernoulli": logits of independent Bernoulli pixels (binarized images, the MNIST tables' protocol);
  "logistic":  a mean and a log scale per subpixel of a logistic discretized to the 256 levels of an
               8-bit image (Salimans et al. 2017's PixelCNN++ likelihood, one component): colour images.
Loss per image, in nats:
  reconstruction = -log p(x|z), summed over pixels
  kl             = KL(q(z|x) || N(0, I)) in closed form
  loss           = reconstruction + kl  (the negative ELBO)
Sides: two halvings for 28 and 32, three for 56 and 64 (``levels``); the channels double with each.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import layers, ops

from models import losses, sampling
from models.replicas import step_logs

LIKELIHOODS = ("bernoulli", "logistic")


def levels(side: int) -> int:
    """Halvings from the image to the last convolution: 2 up to 32 pixels, 3 above."""
    return 2 if side <= 32 else 3


def build_encoder(
    image_shape: tuple[int, int, int], latent_dim: int, width: int = 32, hidden: int = 256, blocks: int = 1
) -> keras.Model:
    """image (batch, h, w, c) in [0, 1] -> (z_mean, z_log_var), each (batch, latent_dim).

    ``levels`` resolutions (h/2, h/4[, h/8]) of width, 2 width[, 4 width] channels, each ``blocks``
    3x3 convolutions (the last one strided), then a dense layer of ``hidden`` units. The outputs
    are float32 even under a mixed-precision policy.
    """
    image = keras.Input(image_shape, name="image")
    x = image
    for channels in [width << level for level in range(levels(image_shape[0]))]:
        for _ in range(blocks - 1):
            x = layers.Conv2D(channels, 3, padding="same", activation="relu")(x)
        x = layers.Conv2D(channels, 3, strides=2, padding="same", activation="relu")(x)  # halves h and w
    x = layers.Flatten()(x)
    x = layers.Dense(hidden, activation="relu")(x)
    z_mean = layers.Dense(latent_dim, name="z_mean", dtype="float32")(x)
    z_log_var = layers.Dense(latent_dim, name="z_log_var", dtype="float32")(x)
    return keras.Model(image, [z_mean, z_log_var], name="encoder")


def build_decoder(
    latent_dim: int,
    image_shape: tuple[int, int, int],
    width: int = 32,
    hidden: int = 256,
    blocks: int = 1,
    likelihood: str = "bernoulli",
) -> keras.Model:
    """z (batch, latent_dim) -> the likelihood's parameters (batch, h, w, c) (Bernoulli logits)
    or (batch, h, w, 2c) (logistic means in [-1, 1] units, then log scales), float32: the
    encoder's mirror."""
    height, width_px, channels = image_shape
    count = levels(height)
    top = width << (count - 1)
    z = keras.Input((latent_dim,), name="z")
    x = layers.Dense(hidden, activation="relu")(z)
    x = layers.Dense((height >> count) * (width_px >> count) * top, activation="relu")(x)
    x = layers.Reshape((height >> count, width_px >> count, top))(x)
    for filters in [top >> level for level in range(count)]:
        x = layers.Conv2DTranspose(filters, 3, strides=2, padding="same", activation="relu")(x)  # doubles h and w
        for _ in range(blocks - 1):
            x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
    outputs = channels * (2 if likelihood == "logistic" else 1)
    logits = layers.Conv2D(outputs, 3, padding="same", name="logits", dtype="float32")(x)
    return keras.Model(z, logits, name="decoder")


class LogisticMean(layers.Layer):
    """A discretized logistic decoder's image: its means, from [-1, 1] units to [0, 1], clipped."""

    def call(self, outputs):
        channels = outputs.shape[-1] // 2
        return ops.clip((outputs[..., :channels] + 1.0) * 0.5, 0.0, 1.0)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] // 2)


def mean_image_network(decoder: keras.Model, likelihood: str = "bernoulli") -> keras.Model:
    """The generator a VAE hands out: z -> the decoder's mean image in [0, 1] (sigmoid of the
    Bernoulli logits, or the logistic's means). Shares the decoder's layers (and so its weights)."""
    if likelihood == "logistic":
        images = LogisticMean(name="image")(decoder.output)
    else:
        images = layers.Activation("sigmoid", name="image")(decoder.output)
    return keras.Model(decoder.input, images, name="generator")


LOG_2PI = 1.8378770664093453  # log(2 pi)


def kl_divergence(z_mean, z_log_var):
    """KL(N(mean, exp(log_var)) || N(0, I)) per example, summed over latent dims (nats): (batch,)."""
    return -0.5 * ops.sum(1.0 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=-1)


def bernoulli_nll(images, logits):
    """-log p(x|z) of a Bernoulli decoder, summed over pixels (nats): (batch,)."""
    per_pixel = ops.binary_crossentropy(images, logits, from_logits=True)
    return ops.sum(ops.reshape(per_pixel, (ops.shape(per_pixel)[0], -1)), axis=-1)


MIN_LOG_SCALE = -7.0  # PixelCNN++'s floor on the logistic's log scale


def logistic_nll(images, outputs):
    """-log p(x|z) of a logistic discretized to 256 levels (PixelCNN++'s, one component) for
    8-bit images given in [0, 1], summed over subpixels (nats): (batch,).

    ``outputs`` (b, h, w, 2c): the means (in [-1, 1] units) and the log scales. Each level k/255
    owns the bin of width 2/255 around it in [-1, 1]; the lowest and highest levels take the
    tails. Where a bin's probability underflows, the density at its centre times its width."""
    channels = images.shape[-1]
    x = ops.cast(images, "float32") * 2.0 - 1.0
    mean = outputs[..., :channels]
    log_scale = ops.maximum(outputs[..., channels:], MIN_LOG_SCALE)
    centred, inverse_scale = x - mean, ops.exp(-log_scale)
    plus, minus = inverse_scale * (centred + 1.0 / 255.0), inverse_scale * (centred - 1.0 / 255.0)
    log_cdf_plus = plus - ops.softplus(plus)  # log sigmoid(plus): the lowest level's tail
    log_survival_minus = -ops.softplus(minus)  # log (1 - sigmoid(minus)): the highest level's tail
    delta = ops.sigmoid(plus) - ops.sigmoid(minus)
    middle = inverse_scale * centred
    log_density_times_width = middle - log_scale - 2.0 * ops.softplus(middle) + math.log(2.0 / 255.0)
    inner = ops.where(delta > 1e-5, ops.log(ops.maximum(delta, 1e-12)), log_density_times_width)
    log_p = ops.where(x < -0.999, log_cdf_plus, ops.where(x > 0.999, log_survival_minus, inner))
    return -ops.sum(ops.reshape(log_p, (ops.shape(log_p)[0], -1)), axis=-1)


def negative_log_likelihood(likelihood: str):
    """The reconstruction term of ``likelihood``: (images, decoder outputs) -> nats per image."""
    if likelihood not in LIKELIHOODS:
        raise ValueError(f"unknown likelihood {likelihood!r}; valid: {', '.join(LIKELIHOODS)}")
    return logistic_nll if likelihood == "logistic" else bernoulli_nll


class VAE(keras.Model):
    """Trains an encoder/decoder pair by maximizing the ELBO.

    Trackers (nats per image): ``loss`` (negative ELBO), ``reconstruction_loss``, ``kl_loss``.
    ``test_step`` computes the same numbers without touching any weight.

    Args:
        encoder: network image -> (z_mean, z_log_var).
        decoder: network z -> the likelihood's parameters.
        latent_dim: size of z.
        likelihood: "bernoulli" or "logistic" (``LIKELIHOODS``).
        seed: seeds the reparameterization noise.
    """

    def __init__(self, encoder, decoder, latent_dim: int, seed: int = 0, likelihood: str = "bernoulli", **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.likelihood = likelihood
        self.nll = negative_log_likelihood(likelihood)
        self.generator = mean_image_network(decoder, likelihood)
        self.latent_dim = latent_dim
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.reconstruction_tracker = keras.metrics.Mean(name="reconstruction_loss")
        self.kl_tracker = keras.metrics.Mean(name="kl_loss")
        self.built = True  # the networks arrive built

    def compile(self, optimizer, **kwargs):
        super().compile(optimizer=optimizer, **kwargs)

    def build_optimizers(self) -> None:
        """Create optimizer slots now: before loading a checkpoint into them, and outside the
        replicas' step under tf.distribute (variables cannot be created lazily there)."""
        if not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)

    @property
    def metrics(self):
        return [self.loss_tracker, self.reconstruction_tracker, self.kl_tracker]

    def call(self, images, training=False):
        """Reconstruct: images in [0, 1] -> decoded mean images in [0, 1] (using z = z_mean)."""
        z_mean, _ = self.encoder(images, training=training)
        return self.generator(z_mean, training=training)

    def reparameterize(self, z_mean, z_log_var):
        eps = sampling.normal_per_replica(ops.shape(z_mean), self.seed_generator)
        return z_mean + ops.exp(0.5 * z_log_var) * eps

    def iwae_nll(self, images, k: int, chunk: int = 64):
        """Importance-weighted bound on -log p(x) (Burda et al. 2015), nats per image: (batch,).

        -log (1/k sum_i p(x|z_i) p(z_i) / q(z_i|x)), z_i ~ q(z|x). k = 1 is a one-sample ELBO;
        the bound tightens (falls) as k grows and is at most the ELBO in expectation.
        """
        z_mean, z_log_var = self.encoder(images, training=False)
        batch = ops.shape(images)[0]
        log_weights = []
        for start in range(0, k, chunk):
            n = min(chunk, k - start)
            eps = keras.random.normal((n, batch, self.latent_dim), seed=self.seed_generator)
            z = z_mean[None] + ops.exp(0.5 * z_log_var)[None] * eps  # (n, batch, latent)
            logits = self.decoder(ops.reshape(z, (n * batch, self.latent_dim)), training=False)
            repeated = ops.reshape(
                ops.broadcast_to(images[None], (n, *ops.shape(images))), (n * batch, *images.shape[1:])
            )
            log_px_z = -ops.reshape(self.nll(repeated, logits), (n, batch))
            log_pz = -0.5 * ops.sum(ops.square(z) + LOG_2PI, axis=-1)
            log_qz = -0.5 * ops.sum(ops.square(eps) + z_log_var[None] + LOG_2PI, axis=-1)
            log_weights.append(log_px_z + log_pz - log_qz)
        log_weights = ops.concatenate(log_weights, axis=0)  # (k, batch)
        return -(ops.logsumexp(log_weights, axis=0) - ops.log(ops.cast(k, log_weights.dtype)))

    def _per_example_losses(self, images, training):
        """Per-example (reconstruction, kl), each (batch,), in nats."""
        z_mean, z_log_var = self.encoder(images, training=training)
        logits = self.decoder(self.reparameterize(z_mean, z_log_var), training=training)
        return self.nll(images, logits), kl_divergence(z_mean, z_log_var)

    def _track(self, reconstruction, kl):
        self.loss_tracker.update_state(reconstruction + kl)
        self.reconstruction_tracker.update_state(reconstruction)
        self.kl_tracker.update_state(kl)
        return step_logs({m.name: m.result() for m in self.metrics})

    def train_step(self, data):
        images = data[0] if isinstance(data, (tuple, list)) else data
        with tf.GradientTape() as tape:
            reconstruction, kl = self._per_example_losses(images, training=True)
            loss = losses.distributed_mean(reconstruction + kl, ops.shape(images)[0])
        variables = self.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return self._track(reconstruction, kl)

    def test_step(self, data):
        images = data[0] if isinstance(data, (tuple, list)) else data
        reconstruction, kl = self._per_example_losses(images, training=False)
        return self._track(reconstruction, kl)
