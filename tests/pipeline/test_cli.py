"""Bad input: one clear line on stderr, exit status 2, no traceback, nothing half-written."""

import subprocess
import sys

import pytest

from tests.conftest import ROOT


def latentforge(*args, cwd=None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        cwd=cwd or ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("latentforge: error:")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["main", "--model", "gan"], ["unknown model 'gan'", "valid models: dcgan, vae"]),
        (["main", "--epochs", "0"], ["epochs must be a positive integer, got 0"]),
        (["main", "--batch-size", "-5"], ["batch_size must be a positive integer, got -5"]),
        (["main", "--epochs", "two"], ["epochs must be int, got 'two'"]),
        (["train", "--model", "transformer"], ["unknown model 'transformer'"]),
    ],
)
def test_config_errors(args, fragments, tmp_path):
    result = latentforge(*args, cwd=tmp_path)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "mlflow.db").exists()  # rejected before any work


def test_unknown_dataset_lists_valid_ones(tmp_path):
    result = latentforge("data", "--dataset", "imagenet_tiny_nope", "--tfds-dir", str(tmp_path / "tfds"), cwd=tmp_path)
    assert_one_line_error(result, "unknown dataset 'imagenet_tiny_nope'", "valid: fashion_mnist")


def test_dataset_not_available_offline(tmp_path):
    result = latentforge("data", "--dataset", "mnist", "--tfds-dir", str(tmp_path / "tfds"), cwd=tmp_path)
    assert_one_line_error(result, "dataset 'mnist'", "could not be downloaded")


def test_missing_model_uri(tmp_path):
    result = latentforge("generate", "--model", "models:/no-such-model@champion", "--out", "x.png", cwd=tmp_path)
    assert_one_line_error(result, "models:/no-such-model@champion", "not found")
    assert not (tmp_path / "x.png").exists()


def test_missing_model_file(tmp_path):
    result = latentforge("generate", "--model", str(tmp_path / "nothing.onnx"), cwd=tmp_path)
    assert_one_line_error(result, "not found")


def test_dry_run_prints_the_resolved_config(tmp_path):
    result = latentforge("main", "--model", "vae", "--dry-run", cwd=tmp_path)
    assert result.returncode == 0
    assert '"latent_dim": 32' in result.stdout and '"model": "vae"' in result.stdout
