"""Benchmark: training images/s on 1 worker and on 2, and the all-reduce payload per step of each family.

Throughput: each of ``--models`` trains the same global batch (``--batch``) in one process using
all the usable cores, and in ``--workers`` worker processes on this machine under
MultiWorkerMirroredStrategy (``TF_CONFIG`` on 127.0.0.1, the cores split between them, as a
local ``workers=2`` run splits them), each built and fed as the train stage builds and feeds it
(``bench/train_speed.build`` under the strategy, the input DATA-sharded). After ``--warmup``
steps, every step of ``--steps`` is timed (Keras batch callbacks on the chief); the rounds
alternate (1, N, 1, N, ...) so the machine's noise hits both alike, and the table gives the
median step as images/s. On one machine N workers share its cores, so expect no speed-up: the
number says what the collectives cost.

All-reduce payload: for every family (its defaults), the bytes of the gradients one training
step all-reduces across workers: the variables of every optimizer update in one traced
``train_step`` (both phases of a GAN step, ``critic_steps``, a ProGAN at its last level),
counted as the step is traced. A ring all-reduce over N workers sends (and receives)
2(N-1)/N times that per worker. ``bench/report.py`` turns both into an estimate for N machines.

    .venv/bin/python bench/multi_worker.py [--models dcgan,vae,stylegan] [--workers 2] [--rounds 2]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench import record  # noqa: E402  (after the path insert)
from bench.record import column, presented, series  # noqa: E402

MODELS = "dcgan,vae,stylegan"
BANDWIDTHS_GBIT = (10, 100)  # the estimate's networks
MACHINES = (2, 4, 8, 16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=MODELS, help="families timed on 1 and N workers")
    parser.add_argument("--payload-models", default="", help="families whose payload is counted (default: all)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64, help="global batch")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (tracing, input)")
    parser.add_argument("--rounds", type=int, default=2, help="runs per model and worker count")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--tfds-dir", default="")
    parser.add_argument("--member", default="", help=argparse.SUPPRESS)  # a worker process: model name
    parser.add_argument("--out", default="", help=argparse.SUPPRESS)
    record.add_arguments(parser, "multi_worker")
    args = parser.parse_args()
    if args.member:
        member(args)
        return
    from models import registry

    timed = [m for m in args.models.split(",") if m]
    counted = [m for m in args.payload_models.split(",") if m] or registry.names()
    times: dict[tuple[str, int], list[float]] = {}
    payload: dict[str, int] = {}
    for name in counted:
        if name not in timed:
            payload[name] = launch(args, name, 1, steps=1, warmup=1)["payload_bytes"]
    for _ in range(args.rounds):
        for name in timed:
            for workers in (1, args.workers):
                result = launch(args, name, workers, args.steps, args.warmup)
                times.setdefault((name, workers), []).extend(result["step_s"])
                payload[name] = result["payload_bytes"]
                print(f"  {name} on {workers} worker(s): median step {statistics.median(result['step_s']):.4f} s")
    rows = []
    for name in timed:
        one, many = (statistics.median(times[(name, w)]) for w in (1, args.workers))
        rows.append(
            {
                "model": name,
                "batch": args.batch,
                "workers_1_images_per_s": round(args.batch / one, 1),
                f"workers_{args.workers}_images_per_s": round(args.batch / many, 1),
                "ratio": round(one / many, 3),
                "step_ms_1": round(1000 * one, 2),
                f"step_ms_{args.workers}": round(1000 * many, 2),
                "payload_mb": round(payload[name] / 1e6, 3),
            }
        )
    payloads = [
        {"model": name, "payload_bytes": payload[name], "payload_mb": round(payload[name] / 1e6, 3)} for name in counted
    ]
    estimate = scaling_estimate(rows, payload)
    print_tables(rows, payloads, args.workers)
    record.write(
        "multi_worker",
        args.results,
        parameters={k: getattr(args, k) for k in ("models", "workers", "batch", "steps", "warmup", "rounds")},
        subject={"dataset": args.dataset},
        rows=rows,
        summary={f"{r['model']}_ratio_{args.workers}_over_1": r["ratio"] for r in rows},
        tables={"payload": payloads, "estimate": estimate},
        present=present,
    )


def scaling_estimate(rows: list[dict], payload: dict[str, int]) -> list[dict]:
    """Step time on N machines, each with this machine's measured 1-worker step at the same
    per-machine batch, plus a ring all-reduce of the payload at 10 and 100 Gb/s (no overlap of
    compute and communication, no latency term): speed-up = N * compute / (compute + all-reduce)."""
    out = []
    for row in rows:
        compute = row["step_ms_1"] / 1000
        for machines in MACHINES:
            for gbit in BANDWIDTHS_GBIT:
                allreduce = 2 * (machines - 1) / machines * payload[row["model"]] * 8 / (gbit * 1e9)
                out.append(
                    {
                        "model": row["model"],
                        "machines": machines,
                        "gbit_per_s": gbit,
                        "compute_ms": round(1000 * compute, 2),
                        "allreduce_ms": round(1000 * allreduce, 3),
                        "speedup": round(machines * compute / (compute + allreduce), 2),
                    }
                )
    return out


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def launch(args, name: str, workers: int, steps: int, warmup: int) -> dict:
    """Run one measurement in ``workers`` fresh processes; the chief's result."""
    from pipeline.runtime_setup import usable_cores

    cluster = {"worker": [f"127.0.0.1:{p}" for p in free_ports(workers)]}
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "chief.json"
        processes = []
        for index in range(workers):
            env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
            env.update(
                TF_NUM_INTRAOP_THREADS=str(max(1, usable_cores() // workers)),
                no_proxy="127.0.0.1,localhost",
                NO_PROXY="127.0.0.1,localhost",
            )
            if workers > 1:
                env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
            command = [sys.executable, __file__, "--member", name, "--out", str(out), "--results", ""]
            command += ["--batch", str(args.batch), "--steps", str(steps), "--warmup", str(warmup)]
            command += ["--dataset", args.dataset, "--tfds-dir", args.tfds_dir]
            processes.append(subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True))
        for process in processes:
            _, err = process.communicate(timeout=1800)
            if process.returncode:
                raise SystemExit(f"multi_worker: {name} on {workers} worker(s) failed:\n{err[-3000:]}")
        return json.loads(out.read_text())


def member(args) -> None:
    """One worker: build, warm up, time the steps; the chief writes the result."""
    from pipeline import distributed

    strategy = distributed.strategy()  # before any TensorFlow op
    import keras

    from bench.train_speed import build
    from pipeline import inputs

    spec = inputs.describe(args.dataset, args.tfds_dir)
    with strategy.scope():
        model, data = build(args.member, spec, args.batch)
        if hasattr(model, "images_seen"):  # a growing network: time it at its last level
            model.images_seen.assign(1e12)
        if hasattr(model, "build_optimizers"):
            model.build_optimizers()
    if distributed.member().workers > 1:
        data = distributed.shard_by_data(data)
    updates: list[int] = []
    for attribute in ("optimizer", "d_optimizer", "g_optimizer"):
        optimizer = getattr(model, attribute, None)
        if optimizer is not None and not hasattr(optimizer, "_counted"):
            optimizer._counted = True
            optimizer.apply_gradients = _counting(optimizer.apply_gradients, updates)

    class Timer(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds, self.started, self.payload = [], 0.0, None

        def on_train_batch_begin(self, batch, logs=None):
            self.started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            if self.payload is None:
                self.payload = sum(updates)  # the first trace's updates: one step's
            if batch >= args.warmup:
                self.seconds.append(time.perf_counter() - self.started)

    timer = Timer()
    model.fit(data, steps_per_epoch=args.warmup + args.steps, epochs=1, verbose=0, callbacks=[timer])
    if distributed.member().chief:
        Path(args.out).write_text(json.dumps({"step_s": timer.seconds, "payload_bytes": int(timer.payload)}))


def _counting(apply_gradients, updates: list[int]):
    """``apply_gradients`` that adds the bytes of the variables it updates to ``updates`` (as traced)."""
    import numpy as np

    def counted(grads_and_vars, *args, **kwargs):
        pairs = list(grads_and_vars)
        updates.append(
            sum(
                int(np.prod(v.shape)) * np.dtype(str(v.dtype).replace("tf.", "")).itemsize
                for g, v in pairs
                if g is not None
            )
        )
        return apply_gradients(pairs, *args, **kwargs)

    return counted


def print_tables(rows: list[dict], payloads: list[dict], workers: int) -> None:
    print(f"{'model':<12}{'1 worker img/s':>16}{f'{workers} workers img/s':>18}{'ratio':>8}{'payload MB':>12}")
    for r in rows:
        print(
            f"{r['model']:<12}{r['workers_1_images_per_s']:>16.1f}{r[f'workers_{workers}_images_per_s']:>18.1f}"
            f"{r['ratio']:>8.3f}{r['payload_mb']:>12.3f}"
        )
    print("all-reduce payload per step: " + ", ".join(f"{p['model']} {p['payload_mb']:.3f} MB" for p in payloads))


# ---- how docs/results.md shows the record (bench/report.py renders it) --------------------------
def _multi_worker_tables(record: dict):
    workers = record["parameters"]["workers"]
    speed = [
        column("model", "model", "text"),
        column("batch", "global batch"),
        column("workers_1_images_per_s", "1 worker: images/s", "fixed:1"),
        column(f"workers_{workers}_images_per_s", f"{workers} workers: images/s", "fixed:1"),
        column("ratio", f"{workers} workers / 1", "fixed:3"),
        column("payload_mb", "all-reduce MB/step", "fixed:3"),
    ]
    payload = [column("model", "family", "text"), column("payload_mb", "all-reduce payload, MB per step", "fixed:3")]
    estimate = [
        column("model", "model", "text"),
        column("machines", "machines"),
        column("gbit_per_s", "network Gb/s"),
        column("compute_ms", "compute ms/step", "fixed:1"),
        column("allreduce_ms", "all-reduce ms/step", "fixed:2"),
        column("speedup", "speed-up", "fixed:2"),
    ]
    return [
        (f"1 worker against {workers} on this machine", speed, record["rows"]),
        (
            "Gradient bytes each training step all-reduces, per family (its defaults)",
            payload,
            record["tables"]["payload"],
        ),
        ("Estimate for N machines like this one", estimate, record["tables"]["estimate"]),
    ]


def _multi_worker_reading(record: dict) -> list[str]:
    workers = record["parameters"]["workers"]
    lines = [
        f"On one machine the {workers} workers share its cores and add the collectives' work, so they train "
        "slower than one process: "
        + series([f"`{r['model']}` at {r['ratio']:.2f}× the images/s" for r in record["rows"]])
        + ". That is the cost of the collectives here, not a forecast for several machines."
    ]
    lines.append(
        "The estimate assumes N machines, each running this machine's measured 1-worker step at the same "
        "per-machine batch (the global batch grows N times), a ring all-reduce of the payload (each machine "
        "sends and receives 2(N−1)/N of it) at the stated bandwidth with no latency term and no overlap of "
        "computing and communicating: step = compute + all-reduce, speed-up = N × compute / step. A real "
        "network adds a latency to every collective (several per step) and delivers less than its line rate, "
        "and nothing here measured one, so read it as an upper bound."
    )
    return lines


def present(record: dict) -> dict:
    """How docs/results.md shows this benchmark's record (``bench/record.py``)."""
    return presented(_multi_worker_tables(record), _multi_worker_reading(record))


if __name__ == "__main__":
    main()
