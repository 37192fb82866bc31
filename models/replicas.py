"""What a training step returns so that Keras's ``fit`` can combine it across workers."""

from __future__ import annotations

import tensorflow as tf
from keras import ops


def spans_workers(strategy=None) -> bool:
    """Whether ``strategy`` (default: the current one) is a MultiWorkerMirroredStrategy over more
    than one worker."""
    strategy = strategy or tf.distribute.get_strategy()
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return False
    cluster = strategy.cluster_resolver.cluster_spec()
    return sum(cluster.num_tasks(job) for job in cluster.jobs) > 1


def step_logs(logs: dict) -> dict:
    """A ``train_step``'s (or ``test_step``'s) logs, in the shape ``fit`` can reduce.

    Under MultiWorkerMirroredStrategy with several workers, Keras 3 (through 3.15 at least)
    reduces each per-replica log value with ``strategy.reduce("MEAN", value, axis=0)``
    (``keras.src.backend.tensorflow.trainer.reduce_per_replica``), which fails for the scalars
    every step returns: "Invalid reduction dimension 0 for input with 0 dimensions" (tensorflow
    issue 72388, keras issue 20585). Values of shape (1,) reduce over that axis to the mean over
    the replicas, the scalar ``fit`` expects; on one worker the logs stay scalars.
    ``tests/models/test_multi_worker.py`` checks that Keras still needs this."""
    if not spans_workers():
        return logs
    return {name: ops.reshape(value, (1,)) for name, value in logs.items()}
