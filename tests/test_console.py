"""A clean console: a stage prints its own lines, not the libraries' chatter (pipeline/quiet.py),
and what may matter still comes through."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline import quiet
from tests.conftest import ROOT, chatter, quiet_environment

# Lines TensorFlow 2.21 wrote to stderr on import on a CPU-only machine, and a real error.
NO_DRIVER = "I0000 00:00:1795968392.269938    9525 cudart_stub.cc:31] Could not find cuda drivers on your machine.\n"
CUINIT = "E0000 00:00:1795968399.641272    9525 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)\n"
PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
REAL_ERROR = "E0000 00:00:1795968399.700000    9525 op_kernel.cc:1830] OP_REQUIRES failed: out of memory\n"
WARNING = "W0000 00:00:1795968399.800000    9525 cpu_allocator.cc:110] Allocation exceeds 10% of memory\n"


def test_tensorflow_load_lines_below_the_level_go_and_errors_stay(monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    kept = quiet._tensorflow_chatter([PREAMBLE, NO_DRIVER, PREAMBLE, CUINIT, WARNING, REAL_ERROR, "plain text\n"])
    assert kept == [REAL_ERROR, "plain text\n"]
    # A driver was found, so its cuInit failure is news: it stays; so do warnings at level 1.
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")
    assert quiet._tensorflow_chatter([PREAMBLE, CUINIT, WARNING]) == [CUINIT, WARNING]


LOG = """
import logging, sys
from pipeline import quiet
quiet.setup("--verbose" in sys.argv)
logging.warning("Please consider to run pre-processing before quantization. Refer to example: ...")
logging.warning("Please consider pre-processing before quantization. See ...")
logging.warning("the disk is full")
logging.getLogger("absl").warning("Variant folder has no dataset_info.json")
logging.getLogger("absl").error("absl error")
"""


@pytest.mark.parametrize("verbose", [False, True])
def test_onnxruntime_quantization_hints_go_other_warnings_stay(verbose):
    args = [sys.executable, "-c", LOG] + (["--verbose"] if verbose else [])
    result = subprocess.run(args, cwd=ROOT, env=quiet_environment(), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "WARNING:root:the disk is full" in result.stderr
    assert "ERROR:absl:absl error" in result.stderr
    assert ("pre-processing before quantization" in result.stderr) is verbose
    assert ("Variant folder" in result.stderr) is verbose


@pytest.mark.slow  # a subprocess that imports TensorFlow and prepares Fashion-MNIST (about a minute)
def test_first_data_stage_prints_only_its_own_lines(tmp_path):
    """A newcomer's first stage: a new MLflow store, Fashion-MNIST prepared from the IDX files,
    TensorFlow imported; the console shows the stage's two lines and nothing else."""
    env = quiet_environment(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "data", "--tfds-dir", str(tmp_path / "tfds")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    assert chatter(output) == []
    lines = output.splitlines()
    assert lines[0].startswith("data: preparing fashion_mnist in ") and lines[-1].startswith("data: fashion_mnist 3")
    assert len(lines) == 2, output


# The line TensorFlow 2.21's graph optimizer wrote when StyleGAN's training step was first run.
REMAPPER = (
    "E0000 00:00:1796068050.750313   26751 meta_optimizer.cc:967] remapper failed: INVALID_ARGUMENT: "
    "Mutation::Apply error: fanout 'StatefulPartitionedCall/gradient_tape/discriminator_5/from_image_1/"
    "LeakyRelu/LeakyReluGrad' exist for missing node 'StatefulPartitionedCall/discriminator_5/from_image_1/add'.\n"
)
OTHER_REMAPPER = REMAPPER.replace("LeakyRelu/LeakyReluGrad", "Relu/ReluGrad")
TRAINING = f"""
import os, sys, time
from pipeline import quiet
quiet.setup("--verbose" in sys.argv)
os.write(2, b"before\\n")
with quiet.training_console():
    os.write(2, {REMAPPER.encode()!r})  # as a C++ library writes: to the file descriptor
    os.write(2, {REAL_ERROR.encode()!r}[:30])  # a line in two writes
    os.write(2, {REAL_ERROR.encode()!r}[30:] + {OTHER_REMAPPER.encode()!r})
    print("python's stderr", file=sys.stderr)
    os.write(2, b"unfinished")
    time.sleep(0.5)  # forwarded without its newline, before what comes next
    print("stdout", flush=True)
    if "--fail" in sys.argv:
        raise RuntimeError("the step failed")
    if "--abort" in sys.argv:
        os.write(2, b"F0000 00:00:1.0 1 check.cc:1] Check failed: the last words\\n")
        os.abort()
if "--fail" not in sys.argv:
    os.write(2, {REMAPPER.encode()!r})  # outside training: kept
"""


def run_training(*flags: str, **streams) -> subprocess.CompletedProcess:
    """Run TRAINING with ``flags``; stdout and stderr captured apart unless ``streams`` says otherwise."""
    streams = streams or {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    args = [sys.executable, "-c", TRAINING, *flags]
    return subprocess.run(args, cwd=ROOT, env=quiet_environment(), text=True, timeout=60, **streams)


@pytest.mark.parametrize("verbose", [False, True])
def test_training_console_drops_only_the_leaky_relu_remapper_line(verbose):
    result = run_training(*(["--verbose"] if verbose else []))
    assert result.returncode == 0, result.stderr
    during = [] if not verbose else [REMAPPER]
    assert result.stderr == "".join(
        ["before\n", *during, REAL_ERROR, OTHER_REMAPPER, "python's stderr\n", "unfinished", REMAPPER]
    )


def test_training_console_forwards_an_unfinished_line_without_waiting_for_its_end():
    result = run_training(stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert result.returncode == 0, result.stdout
    assert result.stdout.index("unfinished") < result.stdout.index("stdout")


def test_training_console_keeps_what_a_crashing_process_wrote_last():
    """The filter is a process of its own: a fatal error's line survives the abort that follows it."""
    result = run_training("--abort")
    assert result.returncode < 0  # SIGABRT
    assert result.stderr.endswith("Check failed: the last words\n"), result.stderr
    assert REAL_ERROR in result.stderr and "LeakyReluGrad" not in result.stderr


def test_training_console_keeps_a_failure_and_its_traceback():
    result = run_training("--fail")
    assert result.returncode == 1
    assert REAL_ERROR in result.stderr
    assert result.stderr.rstrip().endswith("RuntimeError: the step failed"), result.stderr
    assert "LeakyReluGrad" not in result.stderr  # the only one was written while training
