"""Process-wide TensorFlow settings, applied before TensorFlow starts its runtime.

``configure_threads`` sizes TensorFlow's intra-op pool (the threads one op, e.g. a convolution,
splits its work over) to the cores this process may use (``os.sched_getaffinity``, which follows
``taskset``, container CPU sets and, under issue 14's multi-worker training, a worker's share),
and the inter-op pool (how many independent ops run at once) to ``INTER_OP_THREADS``. A value the
user set in ``TF_NUM_INTRAOP_THREADS`` / ``TF_NUM_INTEROP_THREADS`` wins.
"""

from __future__ import annotations

import os
import sys

INTER_OP_THREADS = 2  # TensorFlow's own default on 2 cores; bench/train_speed.py compares others


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def configure_threads(cores: int = 0, inter_op: int = INTER_OP_THREADS) -> None:
    """Set the pools through the environment while TensorFlow is not imported (cheap: no import),
    else through ``tf.config.threading`` (which only works before the first op; after it the pools
    are fixed and this does nothing)."""
    intra = str(cores or usable_cores())
    if "tensorflow" not in sys.modules:
        os.environ.setdefault("TF_NUM_INTRAOP_THREADS", intra)
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", str(inter_op))
        return
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(os.environ.get("TF_NUM_INTRAOP_THREADS") or intra))
        tf.config.threading.set_inter_op_parallelism_threads(int(os.environ.get("TF_NUM_INTEROP_THREADS") or inter_op))
    except RuntimeError:  # TensorFlow already ran an op: its pools are set
        pass


BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of native bfloat16 arithmetic


def slow_bfloat16_warning() -> str:
    """A one-line warning when bfloat16 compute would run emulated: no GPU and a Linux CPU without
    native bfloat16 instructions (there it measured 10-16x slower than float32); else ""."""
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = next((line.split(":", 1)[1].split() for line in cpuinfo if line.startswith("flags")), [])
    except OSError:  # not Linux: say nothing rather than guess
        return ""
    if any(flag in flags for flag in BFLOAT16_CPU_FLAGS):
        return ""
    return (
        "train: warning: precision=mixed_bfloat16 on a CPU without native bfloat16 (no AVX512-BF16/AMX) "
        "runs emulated, about 10x slower than float32 here; use precision=float32"
    )
