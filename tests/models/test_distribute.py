"""The training steps under tf.distribute: two replicas (two logical CPUs) in a subprocess,
since logical devices must be configured before TensorFlow initializes."""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # a TensorFlow subprocess training every case

SCRIPT = """
import json
import sys
import traceback
import numpy as np
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from models import registry
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2


def check(kind, options):
    with strategy.scope():
        model = registry.build(kind, image_shape=(28, 28, 1), latent_dim=8, learning_rate=1e-3, seed=0, options=options)
    value_range = 0.0 if kind in ("vae", "ae") else -1.0
    images = np.random.default_rng(0).uniform(value_range, 1.0, (64, 28, 28, 1)).astype("float32")
    data = (images, np.arange(64, dtype="int32") % 10) if kind == "cdcgan" else images
    history = model.fit(tf.data.Dataset.from_tensor_slices(data).batch(32, drop_remainder=True),
                        epochs=2, verbose=0, shuffle=False)
    for name, values in history.history.items():
        assert all(np.isfinite(values)), (name, values)
    if kind != "vae":
        # each replica draws its own latents (one mirrored seed state would give both the same)
        per_replica = strategy.experimental_local_results(strategy.run(tf.function(lambda: model._latents(4))))
        assert not np.allclose(per_replica[0].numpy(), per_replica[1].numpy()), "replicas drew the same latents"
    augment = getattr(model, "augment", None)
    if augment is not None:
        def replicas(variable):
            return [float(v.numpy()) for v in strategy.experimental_local_results(variable.value)]
        if augment.kind == "ada":  # 4 D steps: one interval, over both replicas' reals, then a fresh one
            assert replicas(augment.steps) == [4.0, 4.0], replicas(augment.steps)
            assert replicas(augment.sign_count) == [0.0, 0.0], replicas(augment.sign_count)
            assert len(set(replicas(augment.p))) == 1, replicas(augment.p)
            augment.p.assign(1.0)
        # each replica draws its own augmentations of the same images
        same = tf.constant(images[:4])
        per_replica = strategy.experimental_local_results(strategy.run(tf.function(lambda: model.augmented(same))))
        assert not np.allclose(per_replica[0].numpy(), per_replica[1].numpy()), "replicas drew the same augmentation"
    ema = getattr(model, "ema_generator", None)
    if ema is not None:  # the weight EMA: the same average on every replica, lagging the raw weights
        trainable = {id(v) for v in model.generator.trainable_weights}
        for average, raw in zip(ema.weights, model.generator.weights):
            first, second = (v.numpy() for v in strategy.experimental_local_results(average.value))
            raw_first, raw_second = (v.numpy() for v in strategy.experimental_local_results(raw.value))
            if id(raw) in trainable:  # the same average on every replica, lagging the raw weights
                np.testing.assert_array_equal(first, second)
                np.testing.assert_array_equal(raw_first, raw_second)
            else:  # buffers (batch-norm statistics, per replica as the raw generator's) are copied
                np.testing.assert_array_equal(first, raw_first)
                np.testing.assert_array_equal(second, raw_second)
        assert not np.allclose(ema.weights[0].numpy(), model.generator.weights[0].numpy())
    return {k: round(float(v[-1]), 3) for k, v in history.history.items()}


results = {}
for name, (kind, options) in json.loads(sys.argv[1]).items():
    try:
        results[name] = {"ok": check(kind, options)}
    except Exception:
        results[name] = {"error": traceback.format_exc()}
print(json.dumps(results))
"""


CASES = {
    "dcgan": ("dcgan", {}),
    "dcgan-ema": ("dcgan", {"ema": 0.999}),
    "vae": ("vae", {}),
    "cdcgan-wgan-gp": ("cdcgan", {"gan_loss": "wgan-gp", "critic_steps": 2, "minibatch_std": True}),
    "dcgan-ada": ("dcgan", {"augment": "ada", "ada_kimg": 0.1}),
    "dcgan-diffaugment": ("dcgan", {"augment": "diffaugment"}),
}


@pytest.fixture(scope="module")
def replicated():
    """Every case trained in one subprocess (TensorFlow starts once); {case: {"ok": losses} or
    {"error": traceback}}."""
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, json.dumps(CASES)], cwd=ROOT, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("case", list(CASES))
def test_training_runs_on_two_replicas(replicated, case):
    assert "ok" in replicated[case], replicated[case].get("error", "")[-3000:]
