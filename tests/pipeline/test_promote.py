"""The registry alias flow on a temporary SQLite store: real exports, real registry."""

import mlflow
import pytest
from mlflow import MlflowClient

from pipeline import data, export_stage, promote, tracking, train
from pipeline.promote import decide
from tests.conftest import tiny_config


def test_gate_rules():
    assert decide(10.0, None, 0.0, True) == (True, "no champion yet")
    assert decide(9.0, 10.0, 0.0, True)[0]
    assert not decide(9.5, 10.0, 1.0, True)[0]  # better, but not by the margin
    assert not decide(11.0, 10.0, 0.0, True)[0]
    assert not decide(1.0, 10.0, 0.0, False)[0]  # parity failed
    assert not decide(float("nan"), None, 0.0, True)[0]
    assert decide(0.8, 0.7, 0.05, True, higher_is_better=True)[0]  # e.g. coverage: more is better
    assert not decide(0.6, 0.7, 0.0, True, higher_is_better=True)[0]
    assert not decide(1.0, 2.0, 0.0, True, "fid/a", "fid/b")[0]  # not comparable


def _evaluation(export_run_id: str, fid: float | None, protocol: str = "extractor=test;n=200") -> str:
    """An evaluate run of ``export_run_id`` holding a given FID (the gate reads only this number)."""
    tags = {tracking.PROTOCOL_TAG: protocol}
    with tracking.stage_run("evaluate", {"export_run_id": export_run_id}, tags=tags) as run:
        if fid is not None:
            mlflow.log_metric("fid", fid)
    return run.info.run_id


@pytest.mark.slow
def test_worse_challenger_is_not_promoted(store, tfds_dir):
    config = tiny_config(tfds_dir)
    data_run, _ = data.run_data(config)
    trained = train.run_train(config, data_run)
    client = MlflowClient()
    name = "fashion_mnist-dcgan"

    def release(fid, **kwargs):
        exported = export_stage.run_export(config, trained.run_id)
        return promote.run_promote(config, exported.run_id, _evaluation(exported.run_id, fid, **kwargs))

    first = release(50.0)
    assert first.promoted and first.reason == "no champion yet"
    worse = release(80.0)
    assert not worse.promoted
    assert str(client.get_model_version_by_alias(name, "champion").version) == first.version
    assert str(client.get_model_version_by_alias(name, "challenger").version) == worse.version
    tags = client.get_model_version(name, worse.version).tags
    assert tags["latentforge.decision"] == "rejected"
    assert float(tags["latentforge.primary_value"]) == 80.0
    assert float(tags["latentforge.champion_value_before"]) == 50.0
    other_protocol = release(10.0, protocol="extractor=another;n=200")
    assert not other_protocol.promoted and "not comparable" in other_protocol.reason
    better = release(30.0)
    assert better.promoted
    assert str(client.get_model_version_by_alias(name, "champion").version) == better.version
    assert promote.champion_history(client, name) == [first.version, better.version]
    # Roll back: champion returns to the version that held it before.
    assert promote.rollback(name) == first.version
    assert str(client.get_model_version_by_alias(name, "champion").version) == first.version
    assert client.get_model_version(name, better.version).tags["latentforge.rolled_back"] == "true"
    from pipeline.errors import UserError

    with pytest.raises(UserError, match="first champion"):
        promote.rollback(name)
    # The champion loads as an MLflow pyfunc and generates images.
    model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    import numpy as np

    out = model.predict({"z": np.zeros((2, 100), np.float32)})
    images = out["image"] if isinstance(out, dict) else np.asarray(out)
    assert images.shape == (2, 28, 28, 1)


@pytest.mark.slow
def test_promote_refuses_the_evaluation_of_another_export_or_one_without_the_metric(store, tfds_dir):
    from pipeline.errors import UserError

    config = tiny_config(tfds_dir)
    trained = train.run_train(config, data.run_data(config)[0])
    exported = export_stage.run_export(config, trained.run_id)
    with pytest.raises(UserError, match="not " + exported.run_id):
        promote.run_promote(config, exported.run_id, _evaluation("some-other-export", 1.0))
    with pytest.raises(UserError, match="no 'fid' metric"):
        promote.run_promote(config, exported.run_id, _evaluation(exported.run_id, None))
