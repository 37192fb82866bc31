"""A clean console: a stage prints its own lines, not the libraries' chatter (pipeline/quiet.py's
settings, and bin/quiet-stderr for the TensorFlow lines no setting reaches, as bin/run uses it),
and what may matter still comes through."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT, chatter, quiet_environment, through_bin_run_filter

# Lines TensorFlow 2.21 wrote to stderr on import on a CPU-only machine, and a real error.
NO_DRIVER = "I0000 00:00:1795968392.269938    9525 cudart_stub.cc:31] Could not find cuda drivers on your machine.\n"
CUINIT = "E0000 00:00:1795968399.641272    9525 cuda_platform.cc:52] failed call to cuInit: UNKNOWN ERROR (303)\n"
PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
REAL_ERROR = "E0000 00:00:1795968399.700000    9525 op_kernel.cc:1830] OP_REQUIRES failed: out of memory\n"
WARNING = "W0000 00:00:1795968399.800000    9525 cpu_allocator.cc:110] Allocation exceeds 10% of memory\n"


QUIET_STDERR = ROOT / "bin" / "quiet-stderr"


def filtered(text: str, **environment: str) -> str:
    """What bin/quiet-stderr lets through of ``text``."""
    env = {**quiet_environment(), **environment}
    done = subprocess.run([str(QUIET_STDERR)], input=text, capture_output=True, text=True, env=env, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_tensorflow_load_lines_below_the_level_go_and_errors_stay():
    # no NVIDIA driver here, so that cuInit fails is expected: dropped; a real error stays
    text = "".join([PREAMBLE, NO_DRIVER, PREAMBLE, CUINIT, WARNING, REAL_ERROR, "plain text\n"])
    assert filtered(text, TF_CPP_MIN_LOG_LEVEL="2") == REAL_ERROR + "plain text\n"
    # at level 1 TensorFlow shows warnings, and so does the filter
    assert filtered(PREAMBLE + WARNING + NO_DRIVER, TF_CPP_MIN_LOG_LEVEL="1") == WARNING
    assert filtered(PREAMBLE + WARNING, LATENTFORGE_VERBOSE="1") == PREAMBLE + WARNING


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
    """A newcomer's first stage, as bin/run runs it: a new MLflow store, Fashion-MNIST prepared
    from the IDX files, TensorFlow imported; the console shows the stage's two lines and nothing else."""
    env = quiet_environment(MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}")
    result = subprocess.run(
        through_bin_run_filter([sys.executable, "-m", "pipeline.cli", "data", "--tfds-dir", str(tmp_path / "tfds")]),
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


def test_the_filter_drops_only_the_leaky_relu_remapper_line():
    text = "before\n" + REMAPPER + REAL_ERROR + OTHER_REMAPPER + "after\n"
    assert filtered(text) == "before\n" + REAL_ERROR + OTHER_REMAPPER + "after\n"
    assert filtered(text, LATENTFORGE_VERBOSE="1") == text


CRASH = f"""
import os, sys
os.write(2, {REMAPPER.encode()!r})
os.write(2, b"F0000 00:00:1.0 1 check.cc:1] Check failed: the last words\\n")
sys.stdout.write("stdout\\n"); sys.stdout.flush()
os.abort()
"""


def test_a_crash_keeps_its_last_words_and_its_status():
    """The filter is a process of the shell, not of the trainer: what a crashing process wrote
    last comes out, and the command's own exit status is the one returned."""
    result = subprocess.run(
        through_bin_run_filter([sys.executable, "-c", CRASH]),
        env=quiet_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 134  # SIGABRT, as the shell reports it
    assert "Check failed: the last words\n" in result.stderr and "LeakyReluGrad" not in result.stderr
    assert result.stdout == "stdout\n"


def test_bin_run_filters_its_stderr_and_quiet_has_no_filter_process():
    run = (ROOT / "bin" / "run").read_text()
    assert "| bin/quiet-stderr >&2" in run and "set -euo pipefail" in run
    source = (ROOT / "pipeline" / "quiet.py").read_text()
    assert len(source.splitlines()) <= 100
    assert "subprocess" not in source and "meta_path" not in source  # settings only
