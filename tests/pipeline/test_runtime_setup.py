"""Process-wide TensorFlow settings: thread pools sized to the usable cores, bfloat16 warning."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from pipeline import runtime_setup

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str, **env) -> str:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TF_NUM_")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env={**environment, **env}, check=True
    )
    return done.stdout.strip()


def test_thread_pools_follow_the_usable_cores_and_a_users_setting_wins():
    code = (
        "import os; from pipeline import runtime_setup; runtime_setup.configure_threads(); "
        "print(os.environ['TF_NUM_INTRAOP_THREADS'], os.environ.get('TF_NUM_INTEROP_THREADS', 'default'))"
    )
    cores = len(os.sched_getaffinity(0))
    assert _run(code) == f"{cores} default"  # the inter-op pool keeps TensorFlow's default
    assert _run(code, TF_NUM_INTEROP_THREADS="3") == f"{cores} 3"
    # one core allowed (taskset, a container's CPU set): one intra-op thread
    assert _run(f"import os; os.sched_setaffinity(0, {{{min(os.sched_getaffinity(0))}}}); " + code).split()[0] == "1"


def test_bfloat16_warning_says_so_exactly_on_cpus_without_native_bfloat16():
    import pytest
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU computes bfloat16 natively")
    flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")).split()
    native = any(flag in flags for flag in runtime_setup.BFLOAT16_CPU_FLAGS)
    warning = runtime_setup.slow_bfloat16_warning()
    assert bool(warning) is not native
    if warning:
        assert "precision=float32" in warning and "\n" not in warning
