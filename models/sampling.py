"""Seeded noise that stays right under tf.distribute."""

from __future__ import annotations

import keras
import tensorflow as tf


def normal_per_replica(shape, seed_generator):
    """Standard normal noise of ``shape`` (batch first, this replica's batch), distinct per replica.

    A SeedGenerator's state is one mirrored variable, so every replica would draw the same
    numbers. Each replica draws the whole global batch instead and keeps its own slice: the
    replicas get different noise, and the global batch is the one a single device would draw.
    """
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas == 1:
        return keras.random.normal(shape, seed=seed_generator)
    batch = shape[0]
    replica = tf.distribute.get_replica_context().replica_id_in_sync_group
    everything = keras.random.normal((batch * replicas, *shape[1:]), seed=seed_generator)
    return everything[replica * batch : (replica + 1) * batch]


def labels_per_replica(batch, num_classes: int, seed_generator):
    """Uniform class labels (int32, shape (batch,)), distinct per replica like ``normal_per_replica``."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas == 1:
        return keras.random.randint((batch,), 0, num_classes, seed=seed_generator, dtype="int32")
    replica = tf.distribute.get_replica_context().replica_id_in_sync_group
    everything = keras.random.randint((batch * replicas,), 0, num_classes, seed=seed_generator, dtype="int32")
    return everything[replica * batch : (replica + 1) * batch]


def replica_rows(batch):
    """``(draw, keep)`` for per-image random parameters that must differ between replicas: draw
    ``draw`` rows (the global batch under tf.distribute) and ``keep`` this replica's ``batch`` of
    them, as ``normal_per_replica`` does. On one replica ``draw`` is ``batch`` and ``keep`` is the identity."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas == 1:
        return batch, lambda rows: rows
    replica = tf.distribute.get_replica_context().replica_id_in_sync_group
    return batch * replicas, lambda rows: rows[replica * batch : (replica + 1) * batch]
