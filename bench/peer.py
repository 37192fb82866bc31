"""The textbook DCGAN that latentforge's DCGAN is measured against, built here so every benchmark
uses the same one.

Networks: Géron, *Hands-On Machine Learning* (2nd/3rd ed.), chapter 17, "Deep Convolutional GANs"
for 28×28 Fashion-MNIST, as printed. Training: the custom ``train_step`` of the keras-io example
"DCGAN to generate face images" (Keras 3): one discriminator call on fakes and reals concatenated
(fakes labelled 1, reals 0, plus 0.05 × uniform label noise), then the generator on fresh latents
labelled 0 ("misleading labels"), binary cross-entropy on D's sigmoid output, Adam(1e-4,
beta_1 0.5) for both, as in that example. Nothing in it is tuned for this machine.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers, ops

LATENT_DIM = 100  # Géron's codings_size


def build_generator(latent_dim: int = LATENT_DIM) -> keras.Model:
    """Géron's DCGAN generator: z -> (28, 28, 1) in [-1, 1]."""
    return keras.Sequential(
        [
            keras.Input((latent_dim,)),
            layers.Dense(7 * 7 * 128),
            layers.Reshape((7, 7, 128)),
            layers.BatchNormalization(),
            layers.Conv2DTranspose(64, 5, strides=2, padding="same", activation="selu"),
            layers.BatchNormalization(),
            layers.Conv2DTranspose(1, 5, strides=2, padding="same", activation="tanh"),
        ],
        name="peer_generator",
    )


def build_discriminator() -> keras.Model:
    """Géron's DCGAN discriminator: (28, 28, 1) -> probability of 'real'."""
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(64, 5, strides=2, padding="same", activation=layers.LeakyReLU(0.2)),
            layers.Dropout(0.4),
            layers.Conv2D(128, 5, strides=2, padding="same", activation=layers.LeakyReLU(0.2)),
            layers.Dropout(0.4),
            layers.Flatten(),
            layers.Dense(1, activation="sigmoid"),
        ],
        name="peer_discriminator",
    )


class PeerDCGAN(keras.Model):
    """keras-io's two-phase ``train_step`` over Géron's networks (see the module docstring)."""

    def __init__(self, latent_dim: int = LATENT_DIM, seed: int = 0):
        super().__init__()
        self.generator = build_generator(latent_dim)
        self.discriminator = build_discriminator()
        self.latent_dim = latent_dim
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")

    def compile(self, learning_rate: float = 1e-4, **kwargs):
        super().compile(**kwargs)
        self.d_optimizer = keras.optimizers.Adam(learning_rate, beta_1=0.5)
        self.g_optimizer = keras.optimizers.Adam(learning_rate, beta_1=0.5)
        self.loss_fn = keras.losses.BinaryCrossentropy()

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker]

    def train_step(self, real_images):
        if isinstance(real_images, (tuple, list)):
            real_images = real_images[0]
        batch = ops.shape(real_images)[0]
        z = keras.random.normal((batch, self.latent_dim), seed=self.seed_generator)
        combined = ops.concatenate([self.generator(z), real_images], axis=0)
        labels = ops.concatenate([ops.ones((batch, 1)), ops.zeros((batch, 1))], axis=0)
        labels += 0.05 * keras.random.uniform(ops.shape(labels), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            d_loss = self.loss_fn(labels, self.discriminator(combined))
        grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
        self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
        z = keras.random.normal((batch, self.latent_dim), seed=self.seed_generator)
        with tf.GradientTape() as tape:
            g_loss = self.loss_fn(ops.zeros((batch, 1)), self.discriminator(self.generator(z)))
        grads = tape.gradient(g_loss, self.generator.trainable_weights)
        self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        return {m.name: m.result() for m in self.metrics}

    def call(self, z, training=False):
        return self.generator(z, training=training)
