"""The registry alias flow on a temporary SQLite store (and, for concurrent promoters, on a team tracking
server on PostgreSQL too): real exports, real registry."""

import multiprocessing
import os

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

    exported = export_stage.run_export(config, trained.run_id)

    def release(fid, **kwargs):  # one export measured four times: the gate reads only the evaluation
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


def _promote_in_a_process(uri, config, export_run_id, eval_run_id, pause_s, start, out):
    """One pipeline's promote stage, in its own process (as two `mlflow run`s would be)."""
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ[promote.PAUSE_VARIABLE] = str(pause_s)
    start.wait()
    result = promote.run_promote(config, export_run_id, eval_run_id)
    out.put((result.version, result.promoted))


def race(uri: str, config, releases: list[tuple[str, str, float]]) -> dict:
    """Promote several (export run, evaluate run) pairs at the same moment, each in its own process,
    each holding for its pause between reading the champion and moving it; {version: promoted}."""
    context = multiprocessing.get_context("spawn")
    start, out = context.Event(), context.Queue()
    workers = [
        context.Process(target=_promote_in_a_process, args=(uri, config, export, evaluation, pause, start, out))
        for export, evaluation, pause in releases
    ]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(timeout=600)
        assert worker.exitcode == 0
    return dict(out.get(timeout=10) for _ in workers)


@pytest.mark.slow
def test_concurrent_promoters_leave_the_better_champion_and_every_move_recorded(any_store, tfds_dir):
    config = tiny_config(tfds_dir)
    trained = train.run_train(config, data.run_data(config)[0])
    client, name = MlflowClient(), "fashion_mnist-dcgan"

    exported = export_stage.run_export(config, trained.run_id)

    def exported_and_measured(fid):  # each promotion registers its own version of the one export
        return exported.run_id, _evaluation(exported.run_id, fid)

    first = promote.run_promote(config, *exported_and_measured(50.0))
    better, worse = exported_and_measured(20.0), exported_and_measured(30.0)
    # Both read the champion (50) before either moves it; the worse one moves last.
    decided = race(any_store, config, [(*better, 4.0), (*worse, 8.0)])
    assert all(decided.values()), decided  # both beat 50: the race happened
    by_value = {float(client.get_model_version(name, v).tags["latentforge.primary_value"]): v for v in decided}
    assert str(client.get_model_version_by_alias(name, "champion").version) == by_value[20.0]
    # every move is recorded: the first champion, the better one, the worse one, then back
    assert promote.champion_history(client, name) == [first.version, by_value[20.0], by_value[30.0], by_value[20.0]]
    assert "settled after concurrent promotions" in client.get_registered_model(name).tags["latentforge.last_move"]
