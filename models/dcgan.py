"""DCGAN (Radford et al. 2015) trained with the two-phase step of Goodfellow et al. 2014.

Generator: Dense -> reshape -> Conv2DTranspose + BatchNorm + ReLU -> ... -> tanh, no pooling.
Discriminator: strided Conv2D + LeakyReLU (+ dropout), no pooling, one logit out.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers, ops

from models import losses, sampling


def build_generator(latent_dim: int, image_shape: tuple[int, int, int], width: int = 64) -> keras.Model:
    """z (batch, latent_dim) -> image (batch, h, w, c) in [-1, 1]."""
    height, width_px, channels = image_shape
    start = (height // 4, width_px // 4)
    z = keras.Input((latent_dim,), name="z")
    x = layers.Dense(start[0] * start[1] * width * 2, use_bias=False)(z)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Reshape((start[0], start[1], width * 2))(x)  # (batch, h/4, w/4, 2*width)
    x = layers.Conv2DTranspose(width, 4, strides=2, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)  # (batch, h/2, w/2, width)
    x = layers.Conv2DTranspose(width // 2, 4, strides=2, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)  # (batch, h, w, width/2)
    x = layers.Conv2D(channels, 3, padding="same", activation="tanh", name="image")(x)
    return keras.Model(z, x, name="generator")


def build_discriminator(image_shape: tuple[int, int, int], width: int = 64, dropout_rate: float = 0.3) -> keras.Model:
    """image (batch, h, w, c) in [-1, 1] -> logit (batch, 1)."""
    image = keras.Input(image_shape, name="image")
    x = layers.Conv2D(width, 4, strides=2, padding="same")(image)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.Dropout(dropout_rate)(x)  # (batch, h/2, w/2, width)
    x = layers.Conv2D(width * 2, 4, strides=2, padding="same")(x)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.Dropout(dropout_rate)(x)  # (batch, h/4, w/4, 2*width)
    x = layers.Flatten()(x)
    logit = layers.Dense(1, name="logit")(x)
    return keras.Model(image, logit, name="discriminator")


class DCGAN(keras.Model):
    """Alternating GAN training of a generator and a discriminator.

    Each ``train_step`` has two phases:
      1. the discriminator learns real images (label 1) vs fakes (label 0), generator frozen;
      2. the generator learns on fresh fakes labelled 1, discriminator frozen.
    Trackers: ``d_loss``, ``g_loss``, ``d_real`` = mean D(x), ``d_fake`` = mean D(G(z)).
    At the Nash equilibrium both D(x) and D(G(z)) tend to 1/2.

    Args:
        generator: network z -> image in [-1, 1].
        discriminator: network image -> logit.
        latent_dim: size of z.
        seed: seeds the latents drawn in ``train_step``.
    """

    value_range = "tanh"

    def __init__(self, generator, discriminator, latent_dim: int, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = latent_dim
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_real_tracker = keras.metrics.Mean(name="d_real")
        self.d_fake_tracker = keras.metrics.Mean(name="d_fake")
        self.built = True  # the networks arrive built

    def compile(self, d_optimizer, g_optimizer, **kwargs):
        super().compile(**kwargs)
        self.d_optimizer = d_optimizer
        self.g_optimizer = g_optimizer

    def build_optimizers(self) -> None:
        """Create optimizer slots now: before loading a checkpoint into them, and outside the
        replicas' step under tf.distribute (variables cannot be created lazily there)."""
        for optimizer, network in ((self.d_optimizer, self.discriminator), (self.g_optimizer, self.generator)):
            if not optimizer.built:
                optimizer.build(network.trainable_variables)

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.d_real_tracker, self.d_fake_tracker]

    def call(self, z, training=False):
        return self.generator(z, training=training)

    def _latents(self, batch):
        return sampling.normal_per_replica((batch, self.latent_dim), self.seed_generator)

    def _discriminator_step(self, real_images):
        """Phase 1: update D on real (1) and fake (0); G is not updated."""
        batch = ops.shape(real_images)[0]
        fake_images = self.generator(self._latents(batch), training=True)
        with tf.GradientTape() as tape:
            real_logits = self.discriminator(real_images, training=True)
            fake_logits = self.discriminator(fake_images, training=True)
            per_example = losses.discriminator_loss(real_logits, fake_logits)
            loss = losses.distributed_mean(per_example, batch)
        variables = self.discriminator.trainable_variables
        self.d_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        self.d_loss_tracker.update_state(per_example)
        self.d_real_tracker.update_state(ops.sigmoid(real_logits))
        self.d_fake_tracker.update_state(ops.sigmoid(fake_logits))

    def _generator_step(self, batch):
        """Phase 2: update G on fresh fakes labelled 1; D is not updated."""
        with tf.GradientTape() as tape:
            fake_images = self.generator(self._latents(batch), training=True)
            fake_logits = self.discriminator(fake_images, training=True)
            per_example = losses.generator_loss(fake_logits)
            loss = losses.distributed_mean(per_example, batch)
        variables = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        self.g_loss_tracker.update_state(per_example)

    def train_step(self, data):
        real_images = data[0] if isinstance(data, (tuple, list)) else data
        self._discriminator_step(real_images)
        self._generator_step(ops.shape(real_images)[0])
        return {m.name: m.result() for m in self.metrics}
