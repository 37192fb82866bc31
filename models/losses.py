"""GAN losses as pure functions of discriminator logits.

Each returns a **per-example** loss of shape (batch,); the training step reduces it with
``distributed_mean`` so the same code is right on one device and under ``tf.distribute``.
"""

from __future__ import annotations

import tensorflow as tf
from keras import ops


def _bce_with_logits(labels, logits):
    # (batch, 1) logits -> (batch,) binary cross-entropy in nats, numerically stable.
    logits = ops.reshape(logits, (-1,))
    labels = ops.broadcast_to(ops.cast(labels, logits.dtype), ops.shape(logits))
    return ops.binary_crossentropy(labels, logits, from_logits=True)


def discriminator_loss(real_logits, fake_logits):
    """Real images labelled 1, fakes labelled 0 (Goodfellow et al. 2014): (batch,)."""
    return _bce_with_logits(1.0, real_logits) + _bce_with_logits(0.0, fake_logits)


def generator_loss(fake_logits):
    """Non-saturating generator loss: fresh fakes labelled 1, i.e. -log D(G(z)): (batch,)."""
    return _bce_with_logits(1.0, fake_logits)


def distributed_mean(per_example, per_replica_batch):
    """Mean over the *global* batch: sum on this replica / (per-replica batch * replicas).

    Keras sums gradients across replicas, so scaling by the global batch makes the update
    the same as on one device with the whole batch.
    """
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    total = ops.cast(per_replica_batch * replicas, per_example.dtype)
    return ops.sum(per_example) / total
