"""A small CNN classifier whose penultimate layer is the feature space of the Fréchet distance.

The usual FID uses ImageNet Inception weights, which are meaningless on 28x28 grayscale
data (and cannot be downloaded here); a classifier trained on the dataset itself is the
established substitute (TF-GAN's ``mnist_frechet_distance``).
"""

from __future__ import annotations

import keras
from keras import layers

FEATURE_DIM = 128
# v3: one convolution per resolution, 32 -> 64 -> 128 channels (v2: two at h and at h/2, 32 and 64):
# less than half of v2's multiply-adds.
# v4: v3's network, 3 epochs with the learning rate decayed from 2e-3 to 0 on a cosine (v3: 6
# epochs at a constant 1e-3): about half the training time for a test accuracy within a point.
# v5: v4's network and schedule, fed by one tf.data pipeline across the epochs
# (pipeline.inputs.array_batches) instead of Keras's per-epoch array pipeline: another data
# order, so other weights, and less time. The registered extractor's test accuracy is logged with
# every evaluation (extractor_test_accuracy; docs/results.md#evaluation-time-per-step-and-scores).
VERSION = "cnn128-v5"  # bump when the architecture or training recipe changes
PEAK_LEARNING_RATE = 2e-3


def build_classifier(image_shape: tuple[int, int, int], num_classes: int) -> keras.Model:
    """image (batch, h, w, c) in [0, 1] -> [features (batch, 128), logits (batch, classes)].

    Images above 32 pixels are max-pooled further after the last convolution, down to 8x8 or
    less (64: 16 -> 8), so the dense layer stays the size it has at 28 and 32 pixels."""
    image = keras.Input(image_shape, name="image")
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(image)
    x = layers.MaxPooling2D()(x)  # (batch, h/2, w/2, 32)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)  # (batch, h/4, w/4, 64)
    x = layers.Conv2D(128, 3, padding="same", activation="relu")(x)  # (batch, h/4, w/4, 128)
    side = image_shape[0] // 4
    while side > 8:
        x = layers.MaxPooling2D()(x)
        side //= 2
    x = layers.Flatten()(x)
    x = layers.Dropout(0.3)(x)
    features = layers.Dense(FEATURE_DIM, activation="relu", name="features")(x)
    logits = layers.Dense(num_classes, name="logits")(layers.Dropout(0.3)(features))
    return keras.Model(image, [features, logits], name="classifier")


def build_trainable(network: keras.Model, steps: int) -> keras.Model:
    """The network with only the logits as output, compiled for ``steps`` training steps."""
    model = keras.Model(network.input, network.outputs[1])
    model.compile(
        optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(PEAK_LEARNING_RATE, max(1, steps))),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model
