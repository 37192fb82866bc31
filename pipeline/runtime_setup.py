"""Process-wide TensorFlow settings.

``configure_threads`` sizes TensorFlow's intra-op pool (the threads one op, e.g. a convolution,
splits its work over) to the cores this process may use (``os.sched_getaffinity``, which follows
``taskset`` and container CPU sets, unlike TensorFlow's own count of the machine's cores). The
inter-op pool keeps TensorFlow's default unless asked for. A value the user set in
``TF_NUM_INTRAOP_THREADS`` / ``TF_NUM_INTEROP_THREADS`` wins.
"""

from __future__ import annotations

import os


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def configure_threads(cores: int = 0, inter_op: int = 0) -> None:
    """Intra-op pool = ``cores`` (0 = the usable cores); inter-op pool = ``inter_op`` (0 = TensorFlow's
    default). Set through the environment, which TensorFlow reads when its runtime starts: call it
    before TensorFlow runs its first op (the CLI does, first thing)."""
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(cores or usable_cores()))
    if inter_op:
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", str(inter_op))


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
