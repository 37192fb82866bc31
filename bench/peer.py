"""The textbook DCGAN that latentforge's DCGAN is measured against, built here so every benchmark
uses the same one: Géron, *Hands-On Machine Learning* (2nd/3rd ed.), chapter 17, "Deep
Convolutional GANs", for 28×28 Fashion-MNIST, networks and training as printed.

The book trains it with ``train_gan``, per batch (batch size 32):

    noise = tf.random.normal(shape=[batch_size, codings_size])
    generated_images = generator(noise)                      # no training argument: inference mode
    X_fake_and_real = tf.concat([generated_images, X_batch], axis=0)
    y1 = tf.constant([[0.]] * batch_size + [[1.]] * batch_size)
    discriminator.trainable = True
    discriminator.train_on_batch(X_fake_and_real, y1)        # training mode: dropout on
    noise = tf.random.normal(shape=[batch_size, codings_size])
    y2 = tf.constant([[1.]] * batch_size)
    discriminator.trainable = False
    gan.train_on_batch(noise, y2)                            # G and D in training mode, D frozen

with ``discriminator.compile(loss="binary_crossentropy", optimizer="rmsprop")`` and ``gan`` (the
Sequential of both) compiled the same way. ``PeerDCGAN.train_step`` makes exactly these calls in
one traced step (so the peer is not slowed by Python between two ``train_on_batch`` calls):
the fakes of phase 1 come from the generator in inference mode, as the book's bare
``generator(noise)`` call makes them (its BatchNormalization uses the moving statistics); phase 1
trains D on fakes 0 / reals 1 with D in training mode (dropout 0.4 on); phase 2 trains G through
D with both in training mode (G's BatchNormalization normalizes by, and learns, the batch's
statistics; D's dropout is on; D's weights are not updated); binary cross-entropy on D's sigmoid
output; RMSprop at Keras's defaults (learning rate 1e-3, rho 0.9), one per phase, as the book
compiles them. ``tests/bench/test_peer.py`` checks one step against the book's own calls.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers, ops

LATENT_DIM = 100  # Géron's codings_size
BATCH_SIZE = 32  # Géron's batch_size for train_gan


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
    """Géron's ``train_gan`` as one ``train_step`` over his networks (see the module docstring)."""

    def __init__(self, latent_dim: int = LATENT_DIM, seed: int = 0):
        super().__init__()
        self.generator = build_generator(latent_dim)
        self.discriminator = build_discriminator()
        self.latent_dim = latent_dim
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.built = True  # the networks arrive built

    def compile(self, **kwargs):
        """``optimizer="rmsprop"`` and ``loss="binary_crossentropy"``, as the book compiles both."""
        super().compile(**kwargs)
        self.d_optimizer = keras.optimizers.RMSprop()
        self.g_optimizer = keras.optimizers.RMSprop()
        self.loss_fn = keras.losses.BinaryCrossentropy()

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker]

    @property
    def exported_generator(self):
        return self.generator

    def build_optimizers(self) -> None:
        """Create optimizer slots now, before a checkpoint loads into them."""
        for optimizer, network in ((self.d_optimizer, self.discriminator), (self.g_optimizer, self.generator)):
            if not optimizer.built:
                optimizer.build(network.trainable_variables)

    def train_step(self, real_images):
        if isinstance(real_images, (tuple, list)):
            real_images = real_images[0]
        batch = ops.shape(real_images)[0]
        phase_1_noise = keras.random.normal((batch, self.latent_dim), seed=self.seed_generator)
        phase_2_noise = keras.random.normal((batch, self.latent_dim), seed=self.seed_generator)
        d_loss, g_loss = self.book_step(real_images, phase_1_noise, phase_2_noise)
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        return {m.name: m.result() for m in self.metrics}

    def book_step(self, real_images, phase_1_noise, phase_2_noise):
        """One iteration of ``train_gan``'s loop on ``real_images`` with the given noise; (d_loss, g_loss)."""
        batch = ops.shape(real_images)[0]
        # phase 1 - training the discriminator
        generated_images = self.generator(phase_1_noise)  # as printed: inference mode
        fake_and_real = ops.concatenate([ops.cast(generated_images, real_images.dtype), real_images], axis=0)
        y1 = ops.concatenate([ops.zeros((batch, 1)), ops.ones((batch, 1))], axis=0)
        with tf.GradientTape() as tape:
            d_loss = self.loss_fn(y1, self.discriminator(fake_and_real, training=True))
        variables = self.discriminator.trainable_variables
        self.d_optimizer.apply_gradients(zip(tape.gradient(d_loss, variables), variables))
        # phase 2 - training the generator (gan.train_on_batch with the discriminator frozen)
        y2 = ops.ones((batch, 1))
        with tf.GradientTape() as tape:
            fakes = self.generator(phase_2_noise, training=True)
            g_loss = self.loss_fn(y2, self.discriminator(fakes, training=True))
        variables = self.generator.trainable_variables
        self.g_optimizer.apply_gradients(zip(tape.gradient(g_loss, variables), variables))
        return d_loss, g_loss

    def call(self, z, training=False):
        return self.generator(z, training=training)
