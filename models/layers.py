"""Layers the families share: the fixes to GAN training problems (mini-batch statistics,
experience replay) and the equalized learning rate of ProGAN and StyleGAN (Karras et al. 2018)."""

from __future__ import annotations

import math

import keras
from keras import layers, ops

LRELU_GAIN = math.sqrt(2.0)


GROUP_SIZE = 4  # the GAN families' mini-batch std groups (ProGAN's and StyleGAN2's size)


class MinibatchStd(layers.Layer):
    """Mini-batch standard deviation (Karras et al. 2018, a simplification of Salimans et al.'s
    mini-batch discrimination): appends one feature, the standard deviation of every feature
    over a group of examples, averaged to a scalar. A collapsed batch (all samples alike) shows
    ~0 there, so the discriminator can tell it from a varied real batch.

    Input (batch, ..., channels) -> (batch, ..., channels + 1). ``group_size`` 0: one group, the
    whole batch the layer sees (under tf.distribute: the replica's share). ``group_size`` g: groups
    of g consecutive examples (the whole batch when g does not divide it), so that a batch made of
    a real half and a fake half, each a multiple of g, gives every example the statistic of its own
    half: one call on [real; fake] equals two (``models.gan.example_group``). The GAN families use
    groups of 4 (``GROUP_SIZE``, the papers' size, consecutive here so that the halves stay apart);
    this project's ProGAN and StyleGAN keep the whole batch.
    """

    def __init__(self, group_size: int = 0, epsilon: float = 1e-8, **kwargs):
        super().__init__(**kwargs)
        self.group_size, self.epsilon = int(group_size), epsilon

    def _std(self, x, axis: int):
        mean = ops.mean(x, axis=axis, keepdims=True)
        return ops.sqrt(ops.mean(ops.square(x - mean), axis=axis) + self.epsilon)

    def call(self, x):
        batch = ops.shape(x)[0]

        def whole():
            return ops.ones((batch,), x.dtype) * ops.mean(self._std(x, 0))

        statistic = whole
        if self.group_size:
            g = self.group_size

            def grouped():
                std = self._std(ops.reshape(x, (-1, g, *x.shape[1:])), 1)  # (batch / g, ...)
                return ops.repeat(ops.mean(ops.reshape(std, (ops.shape(std)[0], -1)), axis=1), g)

            statistic = lambda: ops.cond(ops.equal(batch % g, 0), grouped, whole)  # noqa: E731
        per_example = ops.reshape(statistic(), (-1,) + (1,) * (len(x.shape) - 1))
        return ops.concatenate([x, ops.ones_like(x[..., :1]) * per_example], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + 1)

    def get_config(self):
        return {**super().get_config(), "group_size": self.group_size, "epsilon": self.epsilon}


class ReplayBuffer(layers.Layer):
    """Experience replay of old fakes (Shrivastava et al. 2017; the course's fix for oscillation):
    a ring buffer of the last ``size`` generated images (and their labels), a ``ratio`` of every
    discriminator fake batch drawn from it at random once it holds enough.

    Its state is non-trainable weights, so checkpoints carry it and a resumed run replays the
    same history. Not supported under tf.distribute (the ring position is one variable).

    Args:
        size: images kept; at least the batch size.
        image_shape: (h, w, c).
        ratio: fraction of the fake batch replaced by old fakes, in [0, 1].
        seed: seeds which old fakes are drawn.
    """

    def __init__(self, size: int, image_shape, ratio: float = 0.5, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.size, self.ratio = int(size), float(ratio)
        self.images = self.add_weight(
            shape=(self.size, *image_shape), initializer="zeros", trainable=False, name="images"
        )
        self.labels = self.add_weight(
            shape=(self.size,), initializer="zeros", dtype="int32", trainable=False, name="labels"
        )
        self.pushed = self.add_weight(shape=(), initializer="zeros", dtype="int32", trainable=False, name="pushed")
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    def filled(self):
        return ops.minimum(self.pushed, self.size)

    def mix(self, fresh, labels=None):
        """(images, labels) for D's fake batch: the first round(ratio * batch) rows are old fakes
        drawn uniformly from the buffer (once it holds that many), the rest are ``fresh``."""
        batch = ops.shape(fresh)[0]
        labels = ops.zeros((batch,), "int32") if labels is None else ops.cast(labels, "int32")
        n_old = ops.cast(ops.round(self.ratio * ops.cast(batch, "float32")), "int32")
        filled = self.filled()
        index = keras.random.randint((batch,), 0, ops.maximum(filled, 1), seed=self.seed_generator, dtype="int32")
        take_old = ops.logical_and(ops.arange(batch, dtype="int32") < n_old, filled >= n_old)
        images = ops.where(
            ops.reshape(take_old, (-1,) + (1,) * (len(fresh.shape) - 1)), ops.take(self.images, index, axis=0), fresh
        )
        return images, ops.where(take_old, ops.take(self.labels, index, axis=0), labels)

    def push(self, fresh, labels=None):
        """Write a batch of fakes over the oldest entries (batch <= size)."""
        import tensorflow as tf

        batch = ops.shape(fresh)[0]
        labels = ops.zeros((batch,), "int32") if labels is None else ops.cast(labels, "int32")
        positions = ops.expand_dims((self.pushed + ops.arange(batch, dtype="int32")) % self.size, -1)
        self.images.assign(tf.tensor_scatter_nd_update(self.images, positions, ops.stop_gradient(fresh)))
        self.labels.assign(tf.tensor_scatter_nd_update(self.labels, positions, labels))
        self.pushed.assign(self.pushed + batch)


def lrelu(x):
    """Leaky ReLU (0.2) with the equalized learning rate's gain, sqrt 2."""
    return ops.leaky_relu(x, 0.2) * LRELU_GAIN


# ---- equalized-learning-rate layers ------------------------------------------------------------
class EqualDense(layers.Layer):
    """Dense layer with the equalized learning rate: weights N(0, 1/lr_mul), used times
    lr_mul / sqrt(fan_in); bias times lr_mul. ``activation``: "linear" or "lrelu" (gain sqrt 2)."""

    def __init__(self, units: int, lr_multiplier: float = 1.0, bias_init: float = 0.0, activation="linear", **kw):
        super().__init__(**kw)
        self.units, self.lr_multiplier, self.bias_init, self.activation = units, lr_multiplier, bias_init, activation

    def build(self, input_shape):
        fan_in = int(input_shape[-1])
        self.scale = self.lr_multiplier / math.sqrt(fan_in)
        self.kernel = self.add_weight(
            shape=(fan_in, self.units), initializer=keras.initializers.RandomNormal(0.0, 1.0 / self.lr_multiplier)
        )
        self.bias = self.add_weight(
            shape=(self.units,), initializer=keras.initializers.Constant(self.bias_init / self.lr_multiplier)
        )

    def call(self, x):
        y = ops.matmul(x, self.kernel * self.scale) + self.bias * self.lr_multiplier
        return lrelu(y) if self.activation == "lrelu" else y

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "lr_multiplier": self.lr_multiplier,
            "bias_init": self.bias_init,
            "activation": self.activation,
        }


class EqualConv2D(layers.Layer):
    """Convolution with the equalized learning rate ("same" padding, stride 1)."""

    def __init__(self, filters: int, kernel_size: int, use_bias: bool = True, activation="linear", **kw):
        super().__init__(**kw)
        self.filters, self.kernel_size, self.use_bias, self.activation = filters, kernel_size, use_bias, activation

    def build(self, input_shape):
        fan_in = int(input_shape[-1]) * self.kernel_size**2
        self.scale = 1.0 / math.sqrt(fan_in)
        self.kernel = self.add_weight(
            shape=(self.kernel_size, self.kernel_size, int(input_shape[-1]), self.filters),
            initializer=keras.initializers.RandomNormal(0.0, 1.0),
        )
        self.bias = self.add_weight(shape=(self.filters,), initializer="zeros") if self.use_bias else None

    def call(self, x):
        y = ops.conv(x, self.kernel * self.scale, padding="same")
        if self.bias is not None:
            y = y + self.bias
        return lrelu(y) if self.activation == "lrelu" else y

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "use_bias": self.use_bias,
            "activation": self.activation,
        }
