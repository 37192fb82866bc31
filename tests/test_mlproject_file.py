"""MLproject is generated from the config: stale files fail, every field and family option is
a parameter (so `-P name=value` works for each), and `mlflow run` takes the fields that the
hand-kept file once lacked."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import pytest
import yaml

from models import registry
from pipeline import cli, mlproject
from pipeline.config import Config
from tests.conftest import ROOT, TINY


def test_committed_mlproject_is_what_the_config_generates():
    assert (ROOT / "MLproject").read_text() == mlproject.render(), "run: python -m pipeline.mlproject"
    assert mlproject.main(["--check"]) == 0


def test_every_field_and_family_option_is_a_parameter_of_main_and_has_help():
    main = yaml.safe_load((ROOT / "MLproject").read_text())["entry_points"]["main"]
    fields = [f.name for f in dataclasses.fields(Config) if not f.metadata.get("internal")]
    options = list(registry.option_owners())
    assert "minibatch_std" in options and "gan_loss" in options
    assert set(main["parameters"]) == {*fields, *options}
    for name in main["parameters"]:
        assert f"--{name.replace('_', '-')} {{{name}}}" in main["command"]
    help_text = " ".join(cli._parser()._subparsers._group_actions[0].choices["main"].format_help().split())
    for name, f in {**{f.name: f for f in dataclasses.fields(Config)}, **registry.option_fields()}.items():
        if not f.metadata.get("internal"):
            assert " ".join(f.metadata["help"].split())[:40] in help_text, name


@pytest.mark.slow
def test_mlflow_run_takes_the_vae_training_fields(tmp_path, tfds_dir):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PATH": f"{os.path.dirname(sys.executable)}:{os.environ['PATH']}"}
    for leaked in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(leaked, None)
    given = {**TINY, "tfds_dir": tfds_dir, "lr_schedule": "cosine", "width": 16, "precision": "mixed_bfloat16"}
    given.update(model="vae", metrics="fid", eval_samples=100)
    params = [arg for key, value in given.items() for arg in ("-P", f"{key}={value}")]
    command = [sys.executable, "-m", "mlflow", "run", str(ROOT), "--env-manager", "local", "--experiment-name", "p"]
    result = subprocess.run([*command, *params], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("p").experiment_id
    train = client.search_runs([experiment], filter_string="tags.`latentforge.stage` = 'train'")
    assert len(train) == 1, train
    params = train[0].data.params
    assert (params["model"], params["lr_schedule"], params["width"], params["precision"]) == (
        "vae",
        "cosine",
        "16",
        "mixed_bfloat16",
    )
