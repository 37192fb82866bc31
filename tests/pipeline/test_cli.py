"""Bad input: one clear line on stderr, exit status 2, no traceback, nothing half-written."""

import subprocess
import sys

import pytest

from pipeline import cli
from pipeline.presets import PRESETS
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
        (["main", "--model", "stylegan9"], ["unknown model 'stylegan9'", "valid models: dcgan, gan, cdcgan, vae, ae"]),
        (["main", "--preset", "nope"], ["unknown preset 'nope'", "dcgan-fashion"]),
        (["main", "--model", "vae", "--gan-loss", "hinge"], ["gan_loss apply to GAN models", "not vae"]),
        (["main", "--gan-loss", "wasserstein"], ["unknown gan_loss 'wasserstein'", "wgan-gp"]),
        (["main", "--gan-loss", "wgan-gp", "--label-smoothing", "0.1"], ["label_smoothing moves a real target"]),
        (["main", "--augment", "ada", "--gan-loss", "lsgan"], ["augment=ada steers p by the sign of D(real)"]),
        (["main", "--augment", "ada", "--gan-loss", "wgan-gp"], ["wgan-gp's D does not carry", "augment=diffaugment"]),
        (["main", "--replay", "10"], ["replay buffer (10) must hold at least one batch (32)"]),  # the DCGAN's
        (["main", "--replay", "40", "--batch-size", "64"], ["replay buffer (40) must hold at least one batch (64)"]),
        (["main", "--ema", "1.5"], ["label_smoothing and ema must be in [0, 1)"]),
        (["main", "--minibatch-std", "2"], ["minibatch_std must be 0 or 1"]),
        (["main", "--epochs", "0"], ["epochs must be >= 1, got 0", "pass 1 or more"]),
        (["main", "--batch-size", "-5"], ["batch_size must be >= 0, got -5", "pass 0 for the default"]),
        (["main", "--epochs", "two"], ["epochs must be int, got 'two'"]),
        (["train", "--model", "transformer"], ["unknown model 'transformer'"]),
        (["main", "--lr-schedule", "step"], ["unknown lr_schedule 'step'", "cosine"]),
        (["main", "--precision", "float16"], ["unknown precision 'float16'", "mixed_bfloat16"]),
        (["main", "--precision", "mixed_bfloat16"], ["validated for vae, ae only, not dcgan", "precision=float32"]),
        (["main", "--width", "3"], ["width must be an even number"]),
        (["main", "--model", "gan", "--width", "32"], ["width applies to convolutional models, not gan"]),
    ],
)
def test_config_errors(args, fragments, tmp_path):
    result = latentforge(*args, cwd=tmp_path)
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "mlflow.db").exists()  # rejected before any work


@pytest.mark.slow  # a subprocess that imports TensorFlow or MLflow
def test_unknown_dataset_lists_valid_ones(tmp_path):
    result = latentforge("data", "--dataset", "imagenet_tiny_nope", "--tfds-dir", str(tmp_path / "tfds"), cwd=tmp_path)
    assert_one_line_error(result, "unknown dataset 'imagenet_tiny_nope'", "valid: fashion_mnist")


@pytest.mark.slow  # a subprocess that imports TensorFlow or MLflow
def test_dataset_not_available_offline(tmp_path):
    result = latentforge("data", "--dataset", "mnist", "--tfds-dir", str(tmp_path / "tfds"), cwd=tmp_path)
    assert_one_line_error(result, "dataset 'mnist'", "could not be downloaded")


@pytest.mark.slow  # a subprocess that imports TensorFlow or MLflow
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
    assert '"batch_size": 64' in result.stdout  # the VAE's default batch


def test_the_default_dcgan_trains_at_its_familys_batch_size_unless_one_is_given(tmp_path):
    import json

    default = json.loads(latentforge("main", "--dry-run", cwd=tmp_path).stdout)
    assert default["model"] == "dcgan" and default["batch_size"] == 32
    given = json.loads(latentforge("main", "--batch-size", "64", "--dry-run", cwd=tmp_path).stdout)
    assert given["batch_size"] == 64


def test_preset_is_overridable_field_by_field(tmp_path):
    import json

    result = latentforge(
        "main", "--preset", "wgan-gp-fashion", "--epochs", "7", "--seed", "", "--dry-run", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert config["gan_loss"] == "wgan-gp" and config["critic_steps"] == 5  # from the preset, resolved
    assert config["epochs"] == 7  # given: overrides the preset
    assert config["seed"] == 0  # "" (MLproject's default) means not given


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_is_a_valid_config(name):
    from pipeline.config import Config

    config = Config.from_dict({"preset": name}).resolved()
    for field, value in PRESETS[name].items():
        assert getattr(config, field) == value


def test_every_preset_is_documented_in_the_readme_and_the_usage_table():
    readme = (ROOT / "README.md").read_text()
    usage = (ROOT / "docs" / "usage.md").read_text()
    for name in PRESETS:
        assert f"`{name}`" in readme, name
        assert f"| `{name}` |" in usage, name


@pytest.mark.slow  # a subprocess that imports TensorFlow or MLflow
def test_latent_arithmetic_needs_three_classes(tmp_path):
    result = latentforge("latent", "arithmetic", "--model", str(tmp_path / "none.onnx"), cwd=tmp_path)
    assert_one_line_error(result, "arithmetic needs --a, --b and --c")


def test_every_stage_command_has_a_runner():
    assert set(cli.STAGE_RUNNERS) == set(cli.STAGE_FIELDS)
