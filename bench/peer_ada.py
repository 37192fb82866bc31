"""The peer that the emoji study measures latentforge's colour GANs against, built here so every
benchmark uses the same one: keras-io's "Data-efficient GANs with Adaptive Discriminator
Augmentation" (András Béres, 2021; examples/generative/gan_ada.py), networks, augmentation and
training as published, at its 64x64 and batch 128.

As published:
  - generator: z (64) -> Dense(4·4·128, no bias) -> BatchNorm(scale=False) -> ReLU -> 3 x
    [Conv2DTranspose(128, 4, stride 2, no bias) -> BatchNorm(scale=False) -> ReLU] ->
    Conv2DTranspose(channels, 4, stride 2, sigmoid): images in [0, 1];
  - discriminator: 4 x [Conv2D(128, 4, stride 2, no bias) -> BatchNorm(scale=False) ->
    LeakyReLU(0.2)] -> Flatten -> Dropout(0.4) -> Dense(1) (a logit);
  - adaptive augmentation: Keras's RandomFlip("horizontal"), RandomTranslation(0.125, 0.125,
    nearest), RandomRotation(0.125) and RandomZoom((-0.25, 0), (-0.25, 0)) applied to a whole
    batch, then each image keeps its augmented version with probability p; p moves by
    (accuracy on the reals - 0.8) / 1000 after every step (integral control of D's accuracy on
    the reals, sign(logit) > 0, towards 80%);
  - one step: the reals augmented; fakes from the generator in training mode, augmented (the
    gradient flows through the augmentation); D in training mode on the reals and the fakes in
    two separate calls (batch norm per call); the non-saturating loss (binary cross-entropy on
    logits); G and D both updated from one persistent tape; p updated; then the exponential
    moving average (0.99) of every generator weight (batch-norm statistics included) into the EMA
    generator, which is what inference (and so scoring and export) uses;
  - Adam(2e-4, beta_1=0.5) for each network; batch 128; its own KID callback is not part of
    training (scoring here is the study's).
Differences, none of which changes what is trained: the latents are drawn from a seeded
generator (the source draws unseeded), the augmentation's per-image draw has the batch's
actual size (the source's global constant is the same number with drop_remainder), and the
EMA generator's weights start as a copy of the generator's (the source clones the model, whose
fresh initialization the first averages immediately pull towards the generator's).
``tests/bench/test_peer_ada.py`` checks the training against these rules.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers, ops

NOISE_SIZE = 64
DEPTH = 4
WIDTH = 128
LEAKY_RELU_SLOPE = 0.2
DROPOUT_RATE = 0.4
BATCH_SIZE = 128
LEARNING_RATE = 2e-4
BETA_1 = 0.5
EMA = 0.99
MAX_TRANSLATION = 0.125
MAX_ROTATION = 0.125
MAX_ZOOM = 0.25
TARGET_ACCURACY = 0.8
INTEGRATION_STEPS = 1000


def build_generator(image_shape=(64, 64, 3)) -> keras.Model:
    """The source's DCGAN generator: z (64) -> image (side, side, channels) in [0, 1]."""
    side, _, channels = image_shape
    start = side // 2**DEPTH
    noise = keras.Input((NOISE_SIZE,))
    x = layers.Dense(start * start * WIDTH, use_bias=False)(noise)
    x = layers.BatchNormalization(scale=False)(x)
    x = layers.ReLU()(x)
    x = layers.Reshape((start, start, WIDTH))(x)
    for _ in range(DEPTH - 1):
        x = layers.Conv2DTranspose(WIDTH, kernel_size=4, strides=2, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(scale=False)(x)
        x = layers.ReLU()(x)
    image = layers.Conv2DTranspose(channels, kernel_size=4, strides=2, padding="same", activation="sigmoid")(x)
    return keras.Model(noise, image, name="peer_ada_generator")


def build_discriminator(image_shape=(64, 64, 3)) -> keras.Model:
    """The source's DCGAN discriminator: image -> a logit."""
    image = keras.Input(tuple(image_shape))
    x = image
    for _ in range(DEPTH):
        x = layers.Conv2D(WIDTH, kernel_size=4, strides=2, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization(scale=False)(x)
        x = layers.LeakyReLU(negative_slope=LEAKY_RELU_SLOPE)(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(DROPOUT_RATE)(x)
    return keras.Model(image, layers.Dense(1)(x), name="peer_ada_discriminator")


def hard_step(values):
    """The source's ``step``: 0 for negative values, 1 for positive ones (0.5 at 0)."""
    return 0.5 * (1.0 + ops.sign(values))


class AdaptiveAugmenter(keras.layers.Layer):
    """The source's ``AdaptiveAugmenter``: its four Keras augmentation layers, kept per image
    with probability ``probability``, which ``update`` moves towards D's target accuracy."""

    def __init__(self, image_shape=(64, 64, 3), seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.probability = self.add_weight(shape=(), initializer="zeros", trainable=False, name="probability")
        self.augmenter = keras.Sequential(
            [
                keras.Input(tuple(image_shape)),
                layers.RandomFlip("horizontal", seed=seed),
                layers.RandomTranslation(
                    height_factor=MAX_TRANSLATION, width_factor=MAX_TRANSLATION, interpolation="nearest", seed=seed + 1
                ),
                layers.RandomRotation(factor=MAX_ROTATION, seed=seed + 2),
                layers.RandomZoom(height_factor=(-MAX_ZOOM, 0.0), width_factor=(-MAX_ZOOM, 0.0), seed=seed + 3),
            ],
            name="adaptive_augmenter",
        )
        self.seed_generator = keras.random.SeedGenerator(seed + 4)
        self.built = True  # its state is made here (save_weights and load_weights need a built model)

    def call(self, images, training=False):
        if not training:
            return images
        augmented = self.augmenter(images, training=True)
        draws = keras.random.uniform((ops.shape(images)[0], 1, 1, 1), seed=self.seed_generator)
        return ops.where(draws < self.probability, augmented, images)

    def update(self, real_logits) -> None:
        accuracy = ops.mean(hard_step(real_logits))
        moved = self.probability + (accuracy - TARGET_ACCURACY) / INTEGRATION_STEPS
        self.probability.assign(ops.clip(moved, 0.0, 1.0))


class PeerADA(keras.Model):
    """The source's ``GAN_ADA`` (see the module docstring)."""

    value_range = "unit"  # the sigmoid's [0, 1]

    def __init__(self, image_shape=(64, 64, 3), seed: int = 0):
        super().__init__()
        self.augmenter = AdaptiveAugmenter(image_shape, seed=seed)
        self.generator = build_generator(image_shape)
        self.ema_generator = build_generator(image_shape)
        self.ema_generator.set_weights(self.generator.get_weights())
        self.discriminator = build_discriminator(image_shape)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.trackers = {
            name: keras.metrics.Mean(name=name) for name in ("g_loss", "d_loss", "real_acc", "gen_acc", "aug_p")
        }
        self.built = True  # the networks arrive built (a study's checkpoints save and load their weights)

    def compile(self, **kwargs):
        """Adam(2e-4, beta_1 = 0.5) for each network, as the source compiles them."""
        super().compile(**kwargs)
        self.generator_optimizer = keras.optimizers.Adam(LEARNING_RATE, BETA_1)
        self.discriminator_optimizer = keras.optimizers.Adam(LEARNING_RATE, BETA_1)

    @property
    def metrics(self):
        return list(self.trackers.values())

    @property
    def exported_generator(self):
        return self.ema_generator

    def build_optimizers(self) -> None:
        """Create optimizer slots now, before a checkpoint loads into them."""
        for optimizer, network in (
            (self.generator_optimizer, self.generator),
            (self.discriminator_optimizer, self.discriminator),
        ):
            if not optimizer.built:
                optimizer.build(network.trainable_variables)

    def adversarial_loss(self, real_logits, generated_logits):
        """The non-saturating loss: (generator's, discriminator's), as the source computes them."""
        real_labels = ops.ones_like(real_logits)
        generated_labels = ops.zeros_like(generated_logits)
        generator_loss = keras.losses.binary_crossentropy(real_labels, generated_logits, from_logits=True)
        discriminator_loss = keras.losses.binary_crossentropy(
            ops.concatenate([real_labels, generated_labels], axis=0),
            ops.concatenate([real_logits, generated_logits], axis=0),
            from_logits=True,
        )
        return ops.mean(generator_loss), ops.mean(discriminator_loss)

    def train_step(self, real_images):
        if isinstance(real_images, (tuple, list)):
            real_images = real_images[0]
        batch = ops.shape(real_images)[0]
        latents = keras.random.normal((batch, NOISE_SIZE), seed=self.seed_generator)
        return self.source_step(real_images, latents)

    def source_step(self, real_images, latents):
        """The source's ``train_step`` with these latents; its logs."""
        real_images = self.augmenter(real_images, training=True)
        with tf.GradientTape(persistent=True) as tape:
            generated_images = self.generator(latents, training=True)
            generated_images = self.augmenter(generated_images, training=True)
            real_logits = self.discriminator(real_images, training=True)
            generated_logits = self.discriminator(generated_images, training=True)
            generator_loss, discriminator_loss = self.adversarial_loss(real_logits, generated_logits)
        generator_gradients = tape.gradient(generator_loss, self.generator.trainable_weights)
        discriminator_gradients = tape.gradient(discriminator_loss, self.discriminator.trainable_weights)
        self.generator_optimizer.apply_gradients(zip(generator_gradients, self.generator.trainable_weights))
        self.discriminator_optimizer.apply_gradients(zip(discriminator_gradients, self.discriminator.trainable_weights))
        del tape
        self.augmenter.update(real_logits)
        self.trackers["g_loss"].update_state(generator_loss)
        self.trackers["d_loss"].update_state(discriminator_loss)
        self.trackers["real_acc"].update_state(ops.mean(hard_step(real_logits)))
        self.trackers["gen_acc"].update_state(ops.mean(1.0 - hard_step(generated_logits)))
        self.trackers["aug_p"].update_state(self.augmenter.probability)
        for weight, ema_weight in zip(self.generator.weights, self.ema_generator.weights):
            ema_weight.assign(EMA * ema_weight + (1 - EMA) * weight)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def call(self, z, training=False):
        return self.ema_generator(z, training=training)
