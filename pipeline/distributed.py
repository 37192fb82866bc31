"""Training on several workers: ``tf.distribute.MultiWorkerMirroredStrategy`` over the cluster that
``TF_CONFIG`` describes (set by Ray Train, see ``pipeline/ray_launch.py``, or by a platform such as
Kubernetes or Vertex AI), and what the train stage needs to run right under it.

- ``strategy()`` makes the process's strategy once, before TensorFlow runs any op (collective ops
  must be configured at start-up): MultiWorkerMirroredStrategy when ``TF_CONFIG`` names several
  tasks, MirroredStrategy over several GPUs, else the default one-device strategy.
- ``member()`` says which task this process is; only the chief logs to MLflow and writes
  artifacts and checkpoints.
- ``broadcast_from_chief`` makes every worker start from the chief's state (its restored
  checkpoint, its epoch counter), so only the chief reads checkpoints.
- ``shard_by_data`` is how the input is split: every worker reads the same seeded, shuffled
  stream and keeps its replicas' slices of each global batch, so the global batches are those
  of a single process (``tests/models/test_multi_worker.py`` checks the weights against one).

Keras 3's ``fit`` cannot reduce scalar logs across workers: see ``models/replicas.py``.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass

from pipeline.errors import UserError


@dataclass(frozen=True)
class Member:
    """This process's place in the cluster of ``TF_CONFIG`` (one worker, the chief, without it)."""

    workers: int  # tasks in the cluster (chief and workers)
    index: int  # this task's rank among them (the chief is 0)

    @property
    def chief(self) -> bool:
        return self.index == 0

    @property
    def node_id(self) -> str:
        return "chief" if self.chief else f"worker-{self.index}"


def member() -> Member:
    """From ``TF_CONFIG`` (``{"cluster": {...}, "task": {"type", "index"}}``): the chief is the task
    of type ``chief``, or worker 0 when there is none, as TensorFlow decides it."""
    text = os.environ.get("TF_CONFIG", "").strip()
    if not text:
        return Member(1, 0)
    try:
        tf_config = json.loads(text)
        cluster, task = tf_config.get("cluster", {}), tf_config.get("task", {})
        kind, index = task.get("type", "worker"), int(task.get("index", 0))
        jobs = [job for job in ("chief", "worker") if cluster.get(job)]
        counts = {job: len(cluster[job]) for job in jobs}
    except (ValueError, TypeError, AttributeError):
        expected = "{'cluster': ..., 'task': ...}"
        raise UserError(f"TF_CONFIG is not the JSON TensorFlow expects ({expected}); fix or unset it") from None
    if kind not in counts or not 0 <= index < counts[kind]:
        raise UserError(f"TF_CONFIG's task {kind} {index} is not in its cluster ({counts}); fix or unset TF_CONFIG")
    rank = index if kind == "chief" or "chief" not in counts else counts["chief"] + index
    return Member(sum(counts.values()), rank)


@functools.cache
def strategy():
    """The process's ``tf.distribute`` strategy, made on the first call (call it before any
    TensorFlow op when ``TF_CONFIG`` is set; the CLI does)."""
    import tensorflow as tf

    if member().workers > 1:
        return tf.distribute.MultiWorkerMirroredStrategy()
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def shard_by_data(dataset):
    """``dataset`` with tf.distribute's DATA sharding: each worker reads the whole stream and keeps
    its replicas' slices of every global batch (FILE sharding would give each worker other files,
    so the global batches, and the trained weights, would depend on the worker count)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def broadcast_from_chief(variables, values: dict | None = None) -> dict:
    """Give every worker the chief's ``variables`` (Keras or TensorFlow variables made under the
    strategy) and the chief's ``values`` (name -> int); returns the values as the chief has them.
    One collective sum per tensor, with zeros from every replica but the chief's first. Without
    several workers, nothing moves."""
    import tensorflow as tf

    from models.replicas import spans_workers

    values = dict(values or {})
    current = strategy()
    if not spans_workers(current):
        return values
    names = sorted(values)
    chief = member().chief
    tensors = [tf.convert_to_tensor(getattr(v, "value", v)) for v in variables]
    tensors += [tf.constant(values[name], tf.int64) for name in names]

    @tf.function
    def exchange():
        context = tf.distribute.get_replica_context()
        first = tf.logical_and(tf.constant(chief), tf.equal(context.replica_id_in_sync_group, 0))
        return [context.all_reduce("SUM", tf.where(first, t, tf.zeros_like(t))) for t in tensors]

    reduced = [current.experimental_local_results(r)[0] for r in current.run(exchange)]
    for variable, value in zip(variables, reduced):
        variable.assign(value)
    return {name: int(value) for name, value in zip(names, reduced[len(variables) :])}
