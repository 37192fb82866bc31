"""The train stage on N workers, launched and restarted by Ray Train.

``workers=N`` (``latentforge train --workers N``, ``mlflow run -P workers=N``) runs ``fit_model``
(``pipeline/loop.py``) in N Ray workers under ``ray.train.tensorflow.TensorflowTrainer``, which
sets each worker's ``TF_CONFIG``; every worker then trains under MultiWorkerMirroredStrategy
(``pipeline/distributed.py``). Ray runs on a local instance started here (this machine's cores
shared out), or on the cluster at ``RAY_ADDRESS`` (``ray start --head`` on one machine, ``ray
start --address`` on the others).

The MLflow run is this process's (the driver's): it is created, resumed and ended here, the chief
worker logs into it, the others add only their system metrics. After every epoch the chief hands
Ray a checkpoint (``ray.train.report``, kept under ``LATENTFORGE_RAY_STORAGE``, default
``~/.cache/latentforge/ray``; shared storage on a multi-machine cluster) as well as logging its
MLflow checkpoint. When a worker dies, Ray restarts the whole group (up to
``LATENTFORGE_RAY_MAX_FAILURES`` times, default 2) and it continues from the last epoch's
checkpoint, so at most the epoch under way is lost.

Ray is the ``distributed`` extra (``pip install -e '.[distributed]'``; ``bin/setup`` installs it);
nothing else imports this module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import re
import socket
import tempfile
from pathlib import Path
from urllib.parse import urlparse

from pipeline.errors import StageError, UserError

DEFAULT_STORAGE = "~/.cache/latentforge/ray"
INSTALL_HINT = "pip install -e '.[distributed]' (bin/setup installs it)"


def check_available() -> None:
    """One line, before any work, when Ray is missing, ``RAY_ADDRESS`` cannot be reached or a
    ``LATENTFORGE_RAY_*`` setting is not a count."""
    import importlib.util

    try:  # found, not imported: ray.train.tensorflow would load TensorFlow (and its start-up lines) here
        found = importlib.util.find_spec("ray.train.tensorflow") is not None
    except ImportError:
        found = False
    if not found:
        raise UserError(f"workers > 1 trains on Ray, which is not installed: {INSTALL_HINT}")
    _count("LATENTFORGE_RAY_CPUS_PER_WORKER", 1, low=1)
    _count("LATENTFORGE_RAY_MAX_FAILURES", 2, low=0)
    address = os.environ.get("RAY_ADDRESS", "").strip()
    if address and address not in ("auto", "local"):
        parsed = urlparse(address if "://" in address else f"ray://{address}")
        host, port = parsed.hostname, parsed.port
        if not host or not port:
            raise UserError(f"RAY_ADDRESS={address} is not host:port (or ray://host:port); fix or unset it")
        try:
            socket.create_connection((host, port), timeout=5).close()
        except OSError as error:
            raise UserError(
                f"RAY_ADDRESS={address} is not reachable ({error.strerror or error}); start the cluster there "
                "(ray start --head) or unset RAY_ADDRESS to train on a local Ray instance"
            ) from None


def absolute_tracking_uri(uri: str) -> str:
    """``uri`` with a relative SQLite path made absolute (the workers run in other folders)."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(Path(uri[len(prefix) :]).resolve())
    if "://" not in uri and uri:  # a plain folder
        return str(Path(uri).resolve())
    return uri


def fit(job) -> tuple[dict, int]:
    """Train ``job`` (``pipeline.loop.Job``) on ``job.config.workers`` Ray workers; returns (the
    chief's last metrics, the epoch the last attempt started from)."""
    import ray
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.tensorflow import TensorflowTrainer

    from pipeline.runtime_setup import usable_cores

    workers = job.config.workers
    address = os.environ.get("RAY_ADDRESS", "").strip()
    local = address in ("", "local")
    cpus = max(1, usable_cores() // workers) if local else _count("LATENTFORGE_RAY_CPUS_PER_WORKER", 1, low=1)
    max_failures = _count("LATENTFORGE_RAY_MAX_FAILURES", 2, low=0)
    started_here = not ray.is_initialized()
    if started_here:
        from pipeline import quiet

        if not quiet.verbose():  # Ray's own C++ lines (e.g. about its PreemptionWatcher actor)
            os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
        ray.init(
            address="local" if local else address,
            num_cpus=max(usable_cores(), workers * cpus + 1) if local else None,
            include_dashboard=False,
            logging_level=logging.ERROR,
            log_to_driver=True,  # the chief's per-epoch lines
            logging_config=ray.LoggingConfig(log_level="INFO" if quiet.verbose() else "WARNING"),
            runtime_env={
                "env_vars": _worker_environment(),
                "worker_process_setup_hook": "pipeline.ray_launch.quiet_worker",
            },
        )
    storage = os.path.expanduser(os.environ.get("LATENTFORGE_RAY_STORAGE", DEFAULT_STORAGE))
    settings = {
        "job": dataclasses.replace(job, tracking_uri=absolute_tracking_uri(job.tracking_uri)),
        "cpus": cpus,
    }
    trainer = TensorflowTrainer(
        _worker_loop,
        train_loop_config=settings,
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=False, resources_per_worker={"CPU": cpus}),
        run_config=RunConfig(
            name=f"train-{job.run_id}",  # a rerun of the same MLflow run continues Ray's checkpoints too
            storage_path=storage,
            failure_config=FailureConfig(max_failures=max_failures),
            checkpoint_config=CheckpointConfig(num_to_keep=2),
        ),
    )
    print(f"train: {workers} Ray workers ({cpus} CPU each) on {'a local Ray instance' if local else address}")
    try:
        result = trainer.fit()
    except Exception as error:  # Ray's TrainingFailedError (and its kin) after the restarts run out
        raise StageError(f"training on {workers} Ray workers failed: {failure_line(error)}") from error
    finally:
        if started_here:
            ray.shutdown()
    metrics = dict(result.metrics or {})
    start_epoch = int(metrics.pop("start_epoch", 0))
    metrics.pop("epoch", None)
    return metrics, start_epoch


QUIET_WORKER_LOGGERS = (
    "tensorflow",  # INFO:tensorflow:Collective all_reduce tensors: ... once per traced step
    "ray.train",  # "Reporting training result ...", "Checkpoint successfully created at ..." per epoch
    "ray.train.v2._internal.execution.controller.placement_group_cleaner",  # without the dashboard's state API
)


def quiet_worker() -> None:
    """Ray's setup hook in each of its worker processes: the CLI's quiet console (``pipeline/quiet.py``),
    and Ray's and TensorFlow's per-step and per-epoch INFO lines off (``LATENTFORGE_VERBOSE=1`` keeps them)."""
    from pipeline import quiet

    quiet.setup(verbose_flag=False)
    if not quiet.verbose():
        for name in QUIET_WORKER_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)


def _count(name: str, default: int, low: int) -> int:
    """The whole number in the environment variable ``name`` (``default`` when unset); one line otherwise."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < low:
        raise UserError(f"{name}={text} is not a whole number >= {low}; fix or unset it")
    return int(text)


def failure_line(error: BaseException) -> str:
    """The line of a Ray training failure that names the cause: the last ``SomeError: ...`` line of
    its worker snippets, with the line after it when it ends in a colon (Ray's own first line only
    says "Training failed due to worker errors:")."""
    text = str(error).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    causes = [
        i
        for i, line in enumerate(lines)
        if re.match(r"^[\w.]*(Error|Exception)\b[^:]*:", line) and "WorkerGroupError" not in line
    ]
    if not causes:
        return lines[0] if lines else type(error).__name__
    line = lines[causes[-1]]
    if line.endswith(":") and causes[-1] + 1 < len(lines):
        line += " " + lines[causes[-1] + 1]
    return line


def _worker_environment() -> dict:
    """What each worker process needs from this one's environment."""
    keep = ("MLFLOW_TRACKING_URI", "LATENTFORGE_VERBOSE", "LATENTFORGE_SYSTEM_METRICS_S", "TF_CPP_MIN_LOG_LEVEL")
    # Ray Train copies each print into its own log as well, and the console would show both
    return {"RAY_TRAIN_ENABLE_PRINT_PATCH": "0", **{name: os.environ[name] for name in keep if name in os.environ}}


def _bypass_proxy_for(tf_config: str) -> None:
    """TensorFlow's gRPC between workers must not go through an http(s) proxy set in the environment."""
    hosts = {address.rsplit(":", 1)[0] for tasks in json.loads(tf_config)["cluster"].values() for address in tasks}
    for name in ("no_proxy", "NO_PROXY", "no_grpc_proxy"):
        present = [h for h in os.environ.get(name, "").split(",") if h]
        os.environ[name] = ",".join(dict.fromkeys([*present, "127.0.0.1", "localhost", *sorted(hosts)]))


def _worker_loop(settings: dict) -> None:
    """One Ray worker: TensorFlow set up for this worker, then ``fit_model`` as a member of the
    cluster in ``TF_CONFIG``, with Ray's checkpoint each epoch."""
    os.environ.pop("TF_USE_LEGACY_KERAS", None)  # Ray sets it for tf.keras; latentforge is Keras 3
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(settings["cpus"])  # this worker's share, not the machine
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "2")
    _bypass_proxy_for(os.environ["TF_CONFIG"])
    from pipeline import distributed, quiet

    quiet.setup(verbose_flag=False)
    distributed.strategy()  # before any TensorFlow op
    import mlflow
    import ray.train
    from ray.train import Checkpoint

    from pipeline import tracking
    from pipeline.loop import fit_model, write_checkpoint

    job = settings["job"]
    mlflow.set_tracking_uri(job.tracking_uri)
    me = distributed.member()

    def epoch_end(model, epoch: int, logs: dict) -> None:
        if not me.chief:
            ray.train.report({**logs, "epoch": epoch})
            return
        with tempfile.TemporaryDirectory() as folder:
            write_checkpoint(model, Path(folder), epoch)
            ray.train.report({**logs, "epoch": epoch}, checkpoint=Checkpoint.from_directory(folder))

    checkpoint = ray.train.get_checkpoint()
    folder = checkpoint.as_directory() if checkpoint is not None and me.chief else contextlib.nullcontext(None)
    with folder as restore, tracking.system_metrics(job.run_id, me.node_id):
        metrics, start_epoch = fit_model(job, restore_from=Path(restore) if restore else None, epoch_end=epoch_end)
    ray.train.report({**metrics, "start_epoch": start_epoch})
