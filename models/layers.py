"""Layers for the fixes to GAN training problems: mini-batch statistics and experience replay."""

from __future__ import annotations

import keras
from keras import layers, ops


class MinibatchStd(layers.Layer):
    """Mini-batch standard deviation (Karras et al. 2018, a simplification of Salimans et al.'s
    mini-batch discrimination): appends one feature, the standard deviation of every feature
    over the batch, averaged to a scalar. A collapsed batch (all samples alike) shows ~0 there,
    so the discriminator can tell it from a varied real batch.

    Input (batch, ..., channels) -> (batch, ..., channels + 1). The statistic is over the whole
    batch the layer sees (under tf.distribute: the replica's share).
    """

    def __init__(self, epsilon: float = 1e-8, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, x):
        mean = ops.mean(x, axis=0, keepdims=True)
        std = ops.sqrt(ops.mean(ops.square(x - mean), axis=0) + self.epsilon)  # (..., channels)
        statistic = ops.mean(std)
        return ops.concatenate([x, ops.ones_like(x[..., :1]) * statistic], axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] + 1)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


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
