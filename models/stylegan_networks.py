"""StyleGAN2-style networks sized for 28x28 on a CPU (Karras et al. 2019, 2020); the training
model is ``models/stylegan.py``.

Mapping network: z, normalized by its second moment, through ``mapping_layers`` dense layers
(learning-rate multiplier 0.01) to w. Synthesis at 7 -> 14 -> 28: a learned 7x7 constant; per
layer a style from w through an affine layer (bias initialised to 1), a **modulated and
demodulated** 3x3 convolution, written in the non-fused form (scale the activations by the style,
convolve with the shared weight, rescale by the demodulation coefficients: tf2onnx converts it with
a dynamic batch, unlike the grouped-convolution form, and TensorFlow runs it fast on a CPU); per-layer
noise times a learned strength (initialised to 0); skip to-image outputs summed across resolutions,
through tanh (``build_synthesis`` says why).
Discriminator: residual blocks, mini-batch standard deviation. Every weight uses the equalized
learning rate (Karras et al. 2018; ``models/layers.py``): stored N(0, 1), scaled by its He
constant at run time.

Styles: ``num_ws`` = 2 * blocks, one w per layer; the to-image layer of a block shares its w
with the next block's first convolution, as in StyleGAN2 (``W_INDEX`` lists the layout).
Noise: one map per convolution, at its resolution, packed into one vector per image
(``noise_layout``); the training step draws it, the exported graphs take it as an input.
"""

from __future__ import annotations

import math

import keras
from keras import layers, ops

from models.layers import EqualConv2D, EqualDense, MinibatchStd, lrelu
from models.progressive import W_DIM, channels, noise_layout, noise_size, num_ws, resolutions

MAPPING_LR_MULTIPLIER = 0.01


# ---- synthesis layers --------------------------------------------------------------------------
class ModulatedConv2D(layers.Layer):
    """[x (b, h, w, in), w (b, W_DIM)] -> (b, h, w, filters): the StyleGAN2 modulated convolution,
    non-fused: x * style, convolved with the shared weight, times the demodulation coefficients
    rsqrt(sum over (kernel, in) of (weight * style)^2 + 1e-8), which equal the fused form's
    per-sample weight normalization exactly. The affine layer A (w -> style) has its bias at 1.
    ``upsample``: bilinear x2 before the convolution. ``demodulate`` False: the to-image layers."""

    def __init__(self, filters: int, kernel_size: int = 3, demodulate: bool = True, upsample: bool = False, **kw):
        super().__init__(**kw)
        self.filters, self.kernel_size, self.demodulate, self.upsample = filters, kernel_size, demodulate, upsample

    def build(self, input_shape):
        x_shape, _ = input_shape
        in_channels = int(x_shape[-1])
        self.affine = EqualDense(in_channels, bias_init=1.0, name="affine")
        self.affine.build((None, W_DIM))
        self.weight_scale = 1.0 / math.sqrt(in_channels * self.kernel_size**2)
        self.kernel = self.add_weight(
            shape=(self.kernel_size, self.kernel_size, in_channels, self.filters),
            initializer=keras.initializers.RandomNormal(0.0, 1.0),
            name="kernel",
        )

    def call(self, inputs):
        x, w = inputs
        styles = self.affine(w)  # (b, in)
        kernel = self.kernel * self.weight_scale
        if self.upsample:
            x = ops.image.resize(x, (ops.shape(x)[1] * 2, ops.shape(x)[2] * 2), interpolation="bilinear")
        x = x * styles[:, None, None, :]
        x = ops.conv(x, kernel, padding="same")
        if self.demodulate:
            squared = ops.sum(ops.square(kernel), axis=(0, 1))  # (in, out)
            x = x * ops.rsqrt(ops.matmul(ops.square(styles), squared) + 1e-8)[:, None, None, :]
        return x

    def compute_output_shape(self, input_shape):
        (b, h, w, _), _ = input_shape
        factor = 2 if self.upsample else 1
        return (b, None if h is None else h * factor, None if w is None else w * factor, self.filters)

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "demodulate": self.demodulate,
            "upsample": self.upsample,
        }


class StyleLayer(layers.Layer):
    """One synthesis layer: modulated convolution, plus noise times a learned strength
    (initialised to 0), plus bias, leaky ReLU. Inputs [x, w, noise (b, side * side)]."""

    def __init__(self, filters: int, upsample: bool = False, **kw):
        super().__init__(**kw)
        self.filters, self.upsample = filters, upsample
        self.conv = ModulatedConv2D(filters, 3, demodulate=True, upsample=upsample, name="conv")

    def build(self, input_shape):
        x_shape, w_shape, _ = input_shape
        self.conv.build((x_shape, w_shape))
        self.noise_strength = self.add_weight(shape=(), initializer="zeros", name="noise_strength")
        self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")

    def call(self, inputs):
        x, w, noise = inputs
        x = self.conv([x, w])
        side_h, side_w = ops.shape(x)[1], ops.shape(x)[2]
        x = x + self.noise_strength * ops.reshape(noise, (-1, side_h, side_w, 1))
        return lrelu(x + self.bias)

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape[:2])

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "upsample": self.upsample}


class ToImage(layers.Layer):
    """To-image layer: modulated 1x1 convolution without demodulation, plus bias. Inputs [x, w]."""

    def __init__(self, image_channels: int, **kw):
        super().__init__(**kw)
        self.image_channels = image_channels
        self.conv = ModulatedConv2D(image_channels, 1, demodulate=False, name="conv")

    def build(self, input_shape):
        self.conv.build(input_shape)
        self.bias = self.add_weight(shape=(self.image_channels,), initializer="zeros", name="bias")

    def call(self, inputs):
        return self.conv(inputs) + self.bias

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(input_shape)

    def get_config(self):
        return {**super().get_config(), "image_channels": self.image_channels}


class LearnedConstant(layers.Layer):
    """The synthesis network's input: a learned (side, side, channels) tensor, N(0, 1), repeated
    for each image of the batch (the batch size read from ``ws``)."""

    def __init__(self, side: int, channels: int, **kw):
        super().__init__(**kw)
        self.side, self.channels = side, channels

    def build(self, input_shape):
        self.value = self.add_weight(
            shape=(1, self.side, self.side, self.channels),
            initializer=keras.initializers.RandomNormal(0.0, 1.0),
            name="value",
        )

    def call(self, ws):
        return ops.repeat(self.value, ops.shape(ws)[0], axis=0)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.side, self.side, self.channels)

    def get_config(self):
        return {**super().get_config(), "side": self.side, "channels": self.channels}


def build_synthesis(image_shape, width: int = 32) -> keras.Model:
    """[ws (b, num_ws, W_DIM), noise (b, noise_size)] -> image (b, h, w, c): the summed to-image
    outputs through tanh into [-1, 1] (StyleGAN's own output is unbounded).

    Why tanh: half of Fashion-MNIST's pixels sit exactly at the data's minimum (the background),
    which an unbounded output can only hit by exact cancellation, and which the discriminator
    checks first: with the unbounded output the images had speckled, textured backgrounds and
    FID 115 after 400 steps of batch 64 (width 16), against 81 with tanh (and the DCGAN's 76)."""
    sides, widths = resolutions(image_shape), channels(image_shape, width)
    count, layout = num_ws(image_shape), noise_layout(image_shape)
    ws = keras.Input((count, W_DIM), name="ws")
    noise = keras.Input((noise_size(image_shape),), name="noise")

    def take_noise(i):
        offset, side = layout[i]
        return noise[:, offset : offset + side * side]

    x = LearnedConstant(sides[0], widths[0], name="constant")(ws)
    x = StyleLayer(widths[0], name=f"conv{sides[0]}_1")([x, ws[:, 0], take_noise(0)])
    image = ToImage(image_shape[-1], name=f"to_image{sides[0]}")([x, ws[:, 1]])
    w_at, noise_at = 1, 1
    for side, filters in zip(sides[1:], widths[1:]):
        x = StyleLayer(filters, upsample=True, name=f"conv{side}_0")([x, ws[:, w_at], take_noise(noise_at)])
        x = StyleLayer(filters, name=f"conv{side}_1")([x, ws[:, w_at + 1], take_noise(noise_at + 1)])
        upsampled = layers.UpSampling2D(2, interpolation="bilinear", name=f"image_up{side}")(image)
        image = layers.Add(name=f"image{side}")(
            [upsampled, ToImage(image_shape[-1], name=f"to_image{side}")([x, ws[:, w_at + 2]])]
        )
        w_at, noise_at = w_at + 2, noise_at + 2
    image = layers.Activation("tanh", name="squash")(image)
    return keras.Model([ws, noise], image, name="synthesis")


class NormalizeSecondMoment(layers.Layer):
    """x / sqrt(mean(x^2) + 1e-8) over the last axis (StyleGAN's input normalization of z)."""

    def call(self, x):
        return x * ops.rsqrt(ops.mean(ops.square(x), axis=-1, keepdims=True) + 1e-8)


def build_mapping(latent_dim: int, mapping_layers: int = 2) -> keras.Model:
    """z (b, latent_dim) -> w (b, W_DIM): z / sqrt(mean(z^2) + 1e-8), then ``mapping_layers``
    dense layers with leaky ReLU at learning-rate multiplier 0.01."""
    z = keras.Input((latent_dim,), name="z")
    x = NormalizeSecondMoment(name="normalize")(z)
    for i in range(mapping_layers):
        x = EqualDense(W_DIM, lr_multiplier=MAPPING_LR_MULTIPLIER, activation="lrelu", name=f"fc{i}")(x)
    return keras.Model(z, x, name="mapping")


class WAverage(layers.Layer):
    """Holds ``w_avg``, the running average of w (non-trainable; checkpointed with the model), and
    applies truncation and style mixing: inputs [w1, w2, mix (b, num_ws), psi (b, 1)] ->
    ws (b, num_ws, W_DIM) = lerp(w_avg, w_i, psi) per layer, w_i = w2 where mix is 1, else w1."""

    def __init__(self, count: int, **kw):
        super().__init__(**kw)
        self.count = count

    def build(self, input_shape):
        self.w_avg = self.add_weight(shape=(W_DIM,), initializer="zeros", trainable=False, name="w_avg")

    def call(self, inputs):
        w1, w2, mix, psi = inputs
        mix = mix[:, :, None]
        ws = w1[:, None, :] * (1.0 - mix) + w2[:, None, :] * mix
        return self.w_avg + psi[:, :, None] * (ws - self.w_avg)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.count, W_DIM)

    def get_config(self):
        return {**super().get_config(), "count": self.count}


def build_generator(mapping: keras.Model, synthesis: keras.Model, latent_dim: int, image_shape) -> keras.Model:
    """The exported generator: [z, z2, mix, psi, noise] -> [image, ws]. ``mix`` (b, num_ws): 1 where
    a layer takes its w from z2; ``psi`` (b, 1): truncation towards w_avg (1 = none); ``noise``
    (b, noise_size): the per-layer noise maps packed (zeros = deterministic)."""
    count = num_ws(image_shape)
    z = keras.Input((latent_dim,), name="z")
    z2 = keras.Input((latent_dim,), name="z2")
    mix = keras.Input((count,), name="mix")
    psi = keras.Input((1,), name="psi")
    noise = keras.Input((noise_size(image_shape),), name="noise")
    ws = WAverage(count, name="w_average")([mapping(z), mapping(z2), mix, psi])
    image = synthesis([ws, noise])
    return keras.Model([z, z2, mix, psi, noise], [image, ws], name="generator")


# ---- discriminator -----------------------------------------------------------------------------
class ResidualDown(layers.Layer):
    """Residual discriminator block: a 3x3 convolution, 2x2 average pooling, a 3x3 convolution at
    the lower resolution (StyleGAN2's second convolution is strided, so it too costs the output's
    resolution; pooling first then convolving costs the same, 4x less than at full resolution),
    and a 1x1 skip from the pooled input, summed and scaled by 1/sqrt(2)."""

    def __init__(self, filters_in: int, filters_out: int, **kw):
        super().__init__(**kw)
        self.filters_in, self.filters_out = filters_in, filters_out
        self.conv0 = EqualConv2D(filters_in, 3, activation="lrelu", name="conv0")
        self.conv1 = EqualConv2D(filters_out, 3, activation="lrelu", name="conv1")
        self.skip = EqualConv2D(filters_out, 1, use_bias=False, name="skip")

    def build(self, input_shape):
        self.conv0.build(input_shape)
        self.conv1.build((*input_shape[:-1], self.filters_in))
        self.skip.build(input_shape)

    def call(self, x):
        y = self.conv1(ops.average_pool(self.conv0(x), 2, 2))
        return (y + self.skip(ops.average_pool(x, 2, 2))) * (1.0 / math.sqrt(2.0))

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        return (b, None if h is None else h // 2, None if w is None else w // 2, self.filters_out)

    def get_config(self):
        return {**super().get_config(), "filters_in": self.filters_in, "filters_out": self.filters_out}


def build_discriminator(image_shape, width: int = 32) -> keras.Model:
    """image (b, h, w, c) -> logit (b, 1): from-image 1x1, residual blocks to 7x7, mini-batch
    standard deviation, a 3x3 convolution, two dense layers."""
    sides, widths = resolutions(image_shape), channels(image_shape, width)
    image = keras.Input(tuple(image_shape), name="image")
    x = EqualConv2D(widths[-1], 1, activation="lrelu", name="from_image")(image)
    for i in range(len(sides) - 1, 0, -1):
        x = ResidualDown(widths[i], widths[i - 1], name=f"block{sides[i]}")(x)
    x = MinibatchStd()(x)
    x = EqualConv2D(widths[0], 3, activation="lrelu", name="conv")(x)
    x = layers.Flatten()(x)
    x = EqualDense(widths[0], activation="lrelu", name="fc")(x)
    return keras.Model(image, EqualDense(1, name="logit")(x), name="discriminator")
