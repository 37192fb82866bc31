"""Training under MultiWorkerMirroredStrategy: two worker processes on 127.0.0.1 (TF_CONFIG) give
the weights of one process training the same global batches on two replicas (two logical CPUs),
with the same seeds. Worker 1 starts from other weights, which the chief's broadcast replaces."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.multi_worker import free_ports
from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # TensorFlow subprocesses

STEPS, BATCH = 6, 16
TOLERANCE = 1e-4  # float sums in another order (the collective ring vs one process's add)

COMMON = """
import json, os, sys
import numpy as np
kind, out, steps, batch = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])

def train(strategy, before_fit=None):
    import keras
    import tensorflow as tf
    from models import registry
    from pipeline import distributed
    keras.utils.set_random_seed(0)
    with strategy.scope():
        model = registry.build(kind, image_shape=(28, 28, 1), latent_dim=8, learning_rate=1e-3, seed=0,
                               options={}, width=8)
        if hasattr(model, "build_optimizers"):
            model.build_optimizers()
        else:
            model.optimizer.build(model.trainable_variables)
    if before_fit:
        before_fit(model)
    low = 0.0 if kind == "vae" else -1.0
    images = np.random.default_rng(0).uniform(low, 1.0, (steps * batch, 28, 28, 1)).astype("float32")
    data = distributed.shard_by_data(tf.data.Dataset.from_tensor_slices(images).batch(batch, drop_remainder=True))
    history = model.fit(data, epochs=1, verbose=0, shuffle=False)
    return model, {k: float(np.asarray(v[-1]).reshape(-1)[0]) for k, v in history.history.items()}
"""

WORKER = (
    COMMON
    + """
from pipeline import distributed
strategy = distributed.strategy()  # first: before any TensorFlow op
import tensorflow as tf
me = distributed.member()
assert strategy.num_replicas_in_sync == 2, strategy

def scramble_then_broadcast(model):
    if not me.chief:  # another start on worker 1: the chief's broadcast must replace it
        for v in model.weights:
            v.assign(v + 0.5)
    got = distributed.broadcast_from_chief(model.weights, {"epoch": 3 if me.chief else 0})
    assert got == {"epoch": 3}, got

model, logs = train(strategy, scramble_then_broadcast)
upstream = "fixed"
import keras

class ScalarLogs(keras.Model):  # what every train_step returned before models/replicas.step_logs
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(1)
    def call(self, x):
        return self.dense(x)
    def train_step(self, data):
        return {"loss": keras.ops.mean(self.dense(data))}

with strategy.scope():
    probe = ScalarLogs()
    probe.compile()
    probe(np.ones((1, 2), "float32"))
try:
    probe.fit(tf.data.Dataset.from_tensor_slices(np.ones((8, 2), "float32")).batch(4), epochs=1, verbose=0)
except Exception as error:
    upstream = "broken" if "reduction dimension" in str(error) else f"other: {error}"
if me.chief:
    np.savez(out, *[v.numpy() for v in model.weights])
    json.dump({"logs": logs, "upstream": upstream}, open(out + ".json", "w"))
"""
)

REFERENCE = (
    COMMON
    + """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
model, logs = train(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
np.savez(out, *[v.numpy() for v in model.weights])
json.dump({"logs": logs}, open(out + ".json", "w"))
"""
)


def environment(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG",)}
    env.update(no_proxy="127.0.0.1,localhost", NO_PROXY="127.0.0.1,localhost", TF_CPP_MIN_LOG_LEVEL="2")
    env.update(TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="2", **extra)
    return env


def weights(path) -> list[np.ndarray]:
    with np.load(path) as arrays:
        return [arrays[f"arr_{i}"] for i in range(len(arrays.files))]


@pytest.mark.parametrize("kind", ["dcgan", "vae"])
def test_two_workers_train_as_one_process_on_two_replicas(kind, tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    outputs = [str(tmp_path / f"worker{i}.npz") for i in range(2)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, kind, outputs[i], str(STEPS), str(BATCH)],
            cwd=ROOT,
            env=environment(TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    reference = str(tmp_path / "reference.npz")
    single = subprocess.run(
        [sys.executable, "-c", REFERENCE, kind, reference, str(STEPS), str(BATCH)],
        cwd=ROOT,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    try:
        results = [w.communicate(timeout=300) for w in workers]
    finally:
        for w in workers:
            w.kill()
    for w, (_, err) in zip(workers, results):
        assert w.returncode == 0, err[-3000:]
    assert single.returncode == 0, single.stderr[-3000:]
    assert not os.path.exists(outputs[1]), "a worker that is not the chief wrote the weights"
    report = json.loads(Path(outputs[0] + ".json").read_text())
    assert report["upstream"] == "broken", (
        "Keras's fit now reduces scalar logs across workers (tensorflow issue 72388, keras issue 20585 fixed?): "
        f"{report['upstream']}; models/replicas.step_logs can go"
    )
    expected, got = weights(reference), weights(outputs[0])
    assert len(expected) == len(got)
    worst = max(float(np.max(np.abs(a - b))) for a, b in zip(expected, got))
    assert worst <= TOLERANCE, f"2 workers vs 1 process on 2 replicas: max |weight difference| {worst:.3g}"
    reference_logs = json.loads(Path(reference + ".json").read_text())["logs"]
    for name, value in reference_logs.items():
        assert np.isclose(report["logs"][name], value, rtol=1e-3, atol=1e-4), (name, report["logs"], reference_logs)


@pytest.mark.usefixtures("store")
def test_train_stage_on_a_tf_config_cluster_logs_from_the_chief_only(tfds_dir, store):
    """``latentforge train`` started on each member of a TF_CONFIG cluster (as Kubernetes or
    Vertex AI start it): one MLflow run, written by the chief, FINISHED."""
    from mlflow import MlflowClient

    from tests.conftest import TINY

    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    train_fields = ("steps_per_epoch", "batch_size", "train_examples")
    flags = [f"--{k.replace('_', '-')}={TINY[k]}" for k in train_fields] + ["--epochs=2"]
    members = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pipeline.cli",
                "train",
                "--model=dcgan",
                "--width=8",
                f"--tfds-dir={tfds_dir}",
                *flags,
                "--experiment=latentforge-test",
            ],
            cwd=ROOT,
            env=environment(
                TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}),
                MLFLOW_TRACKING_URI=store,
            ),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    try:
        outputs = [m.communicate(timeout=600)[0] for m in members]
    finally:
        for m in members:
            m.kill()
    for m, out in zip(members, outputs):
        assert m.returncode == 0, out[-3000:]
    assert "status='trained'" in outputs[0] and "status='worker'" in outputs[1], outputs
    client = MlflowClient()
    experiment = client.get_experiment_by_name("latentforge-test").experiment_id
    (run,) = client.search_runs([experiment])
    assert run.info.status == "FINISHED"
    assert run.data.params["cluster_workers"] == "2"
    assert {m.step for m in client.get_metric_history(run.info.run_id, "g_loss")} == {1, 2}
