"""Convolutional autoencoder: deterministic encoder and decoder, reconstruction loss only.

Loss per image (nats): binary cross-entropy of the grey-level image against the decoder's
pixel probabilities, summed over pixels. Nothing shapes the latent space, so decoding
z ~ N(0, I) (what ``generator`` does) lands off the region the encoder uses: the autoencoder
is a poor sampler, which the evaluate stage's FID shows next to the VAE's.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers, ops

from models import losses
from models.replicas import step_logs
from models.vae import bernoulli_nll, build_decoder, levels, mean_image_network


def build_encoder(image_shape: tuple[int, int, int], latent_dim: int, width: int = 32) -> keras.Model:
    """image (batch, h, w, c) in [0, 1] -> z (batch, latent_dim). Stride-2 convolutions of width,
    2 width[, 4 width] channels: the VAE's levels (two for sides up to 32, three above), so the
    flattened map stays small at 64x64 as the decoder's start does."""
    image = keras.Input(image_shape, name="image")
    x = image
    for level in range(levels(image_shape[0])):
        x = layers.Conv2D(width << level, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.Flatten()(x)
    x = layers.Dense(256, activation="relu")(x)
    return keras.Model(image, layers.Dense(latent_dim, name="z", dtype="float32")(x), name="encoder")


__all__ = ["AutoEncoder", "build_decoder", "build_encoder"]


class AutoEncoder(keras.Model):
    """Trains encoder and decoder on reconstruction. Tracker: ``loss`` (nats per image).

    ``generator`` is the decoder followed by a sigmoid (z -> image in [0, 1]).
    """

    def __init__(self, encoder, decoder, latent_dim: int, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.decoder = decoder
        self.generator = mean_image_network(decoder)
        self.latent_dim = latent_dim
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.built = True

    def build_optimizers(self) -> None:
        if not self.optimizer.built:
            self.optimizer.build(self.trainable_variables)

    @property
    def metrics(self):
        return [self.loss_tracker]

    def call(self, images, training=False):
        return ops.sigmoid(self.decoder(self.encoder(images, training=training), training=training))

    def _per_example(self, images, training):
        return bernoulli_nll(images, self.decoder(self.encoder(images, training=training), training=training))

    def train_step(self, data):
        images = data[0] if isinstance(data, (tuple, list)) else data
        with tf.GradientTape() as tape:
            per_example = self._per_example(images, training=True)
            loss = losses.distributed_mean(per_example, ops.shape(images)[0])
        variables = self.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        self.loss_tracker.update_state(per_example)
        return step_logs({"loss": self.loss_tracker.result()})

    def test_step(self, data):
        images = data[0] if isinstance(data, (tuple, list)) else data
        self.loss_tracker.update_state(self._per_example(images, training=False))
        return step_logs({"loss": self.loss_tracker.result()})
