"""DCGAN (Radford et al. 2015) networks, plain or conditional (Mirza & Osindero 2014).

Generator: Dense -> reshape -> Conv2DTranspose + BatchNorm + ReLU -> ... -> tanh, no pooling.
Discriminator: strided Conv2D + LeakyReLU (+ dropout), no pooling, one output.
Kernel sizes: on a CPU, TensorFlow's 3x3 convolutions run about 3x faster than 4x4 or 5x5 ones of
the same shape (oneDNN's fast path; ``bench/train_speed.py``), so both networks' hidden layers
default to 3x3; the two layers on pixels (G's last, D's first: one or three image channels, cheap) to 5x5,
which scored a far better FID at equal training time (``models/families/dcgan.py``).
A 4x4 transposed convolution (divisible by the stride) avoids checkerboard artifacts (Odena et
al. 2016) but, given the same training time, scored no better (``models/families/dcgan.py``).
Conditional: the generator takes [z, label] (the label embedded and joined to z); the
discriminator takes [image, label] (the label embedded as one extra image channel, and a
projection of the label's embedding onto the features added to the output, Miyato & Koyama 2018).
Training is ``models.gan.GAN``'s two-phase step (``models/families/dcgan.py`` puts them together).

Sides: the generator starts at 7x7 (sides 7 * 2**k) or 8x8 (4 * 2**k) and doubles the side with
each transposed convolution: two for 28 and 32, three for 56 and 64, four for 112 and 128
(``levels``). Widths scale with the resolution: the start has ``width * 2**(levels - 1)`` channels,
halved at each doubling, so the last hidden layer has ``width`` (at 64x64 and width 64: 256 at
8x8, 128 at 16x16, 64 at 32x32, then the image). The discriminator mirrors it.
"""

from __future__ import annotations

import keras
from keras import layers

from models.layers import GROUP_SIZE, MinibatchStd

EMBEDDING_DIM = 50
KERNEL_SIZE = 3  # of the generator's hidden transposed convolutions (the family's kernel_size option)
D_KERNEL_SIZE = 3  # of the discriminator's hidden convolutions (the family's d_kernel_size option)
IMAGE_KERNEL_SIZE = 5  # of the two layers that touch pixels (the family's image_kernel_size option)


def levels(side: int) -> int:
    """Doublings from the 7x7 or 8x8 start to ``side`` (28, 32: 2; 56, 64: 3; 112, 128: 4; else
    side // 4 as the start and 2, so any side divisible by 4 builds)."""
    for count in (2, 3, 4):
        if side in (7 << count, 8 << count):
            return count
    return 2


def build_generator(
    latent_dim: int,
    image_shape: tuple[int, int, int],
    width: int = 64,
    num_classes: int = 0,
    kernel_size: int = KERNEL_SIZE,
    image_kernel_size: int = IMAGE_KERNEL_SIZE,
) -> keras.Model:
    """z (batch, latent_dim) [and label (batch,) int32] -> image (batch, h, w, c) in [-1, 1].

    The last transposed convolution makes the image itself (Radford et al.'s layout)."""
    height, width_px, channels = image_shape
    count = levels(height)
    start = (height >> count, width_px >> count)
    top = width * 2 ** (count - 1)  # channels at the start; halved at each doubling
    z = keras.Input((latent_dim,), name="z")
    inputs, x = [z], z
    if num_classes:
        label = keras.Input((), dtype="int32", name="label")
        inputs.append(label)
        x = layers.Concatenate()([z, layers.Embedding(num_classes, EMBEDDING_DIM, name="label_embedding")(label)])
    x = layers.Dense(start[0] * start[1] * top, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.ReLU()(x)
    x = layers.Reshape((start[0], start[1], top))(x)  # (batch, h/2**levels, w/2**levels, top)
    for level in range(1, count):
        filters = top >> level
        x = layers.Conv2DTranspose(filters, kernel_size, strides=2, padding="same", use_bias=False)(x)
        x = layers.BatchNormalization()(x)
        x = layers.ReLU()(x)  # (batch, h/2**(levels - level), ..., filters): width at h/2
    x = layers.Conv2DTranspose(channels, image_kernel_size, strides=2, padding="same", activation="tanh", name="image")(
        x
    )
    return keras.Model(inputs if num_classes else z, x, name="generator")


def build_discriminator(
    image_shape: tuple[int, int, int],
    width: int = 64,
    dropout_rate: float = 0.3,
    minibatch_std: bool = False,
    group_size: int = GROUP_SIZE,
    num_classes: int = 0,
    kernel_size: int = D_KERNEL_SIZE,
    image_kernel_size: int = IMAGE_KERNEL_SIZE,
) -> keras.Model:
    """image (batch, h, w, c) in [-1, 1] [and label (batch,) int32] -> output (batch, 1).

    The first convolution, on the pixels, has ``image_kernel_size``; the second ``kernel_size``."""
    height, width_px, _ = image_shape
    image = keras.Input(image_shape, name="image")
    x = image
    if num_classes:
        label = keras.Input((), dtype="int32", name="label")
        plane = layers.Embedding(num_classes, EMBEDDING_DIM, name="label_embedding")(label)
        plane = layers.Reshape((height, width_px, 1))(layers.Dense(height * width_px)(plane))
        x = layers.Concatenate()([image, plane])
    x = layers.Conv2D(width, image_kernel_size, strides=2, padding="same")(x)
    x = layers.LeakyReLU(0.2)(x)
    x = layers.Dropout(dropout_rate)(x)  # (batch, h/2, w/2, width)
    for level in range(1, levels(height)):
        x = layers.Conv2D(width << level, kernel_size, strides=2, padding="same")(x)
        x = layers.LeakyReLU(0.2)(x)
        x = layers.Dropout(dropout_rate)(x)  # (batch, h/2**(level + 1), ..., width * 2**level)
    if minibatch_std:
        x = MinibatchStd(group_size)(x)
    x = layers.Flatten()(x)
    logit = layers.Dense(1, name="logit")(x)
    if num_classes:  # projection (Miyato & Koyama 2018): + <embed(label), features>
        projection = layers.Embedding(num_classes, x.shape[-1], name="label_projection")(label)
        # elementwise product and sum, not layers.Dot: Dot's gradient is a (batch x batch) matmul,
        # a large share of the cDCGAN step's float operations in TensorFlow's graph profiler
        score = keras.ops.sum(layers.Multiply()([projection, x]), axis=-1, keepdims=True)
        logit = layers.Add()([logit, score])
    return keras.Model([image, label] if num_classes else image, logit, name="discriminator")
