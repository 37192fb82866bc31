"""Benchmark: generator inference latency per runtime, each runtime in the process a user would run it in.

For a registered generator (default the champion DCGAN) at batch 1 and 64: Keras ``predict``,
Keras direct call, the SavedModel signature, ONNX FP32 and ONNX INT8 (onnxruntime, CPU).
Prints the median latency over --repeats calls (after warm-up), images/s, and each runtime's
ratio to ONNX FP32 (> 1 = slower than ONNX FP32), and writes them with their provenance to
bench/results/inference.json (``bench/record.py``; rendered by ``bench/report.py``).

How it is measured, and why:

- Each ONNX file runs in its own process that never imports TensorFlow, loaded the way
  ``latentforge generate``, ``serve`` and ``serving/edge.py`` load it (``GeneratorRuntime``:
  onnxruntime's default threads). The three TensorFlow runtimes share one TensorFlow process.
  In one process, TensorFlow's thread pools would compete with onnxruntime's, which no user sees.
- The processes are started once and stay up; this one (no TensorFlow; it runs no model) has
  them take turns in 10 rounds of short blocks on the same inputs, so machine noise hits every
  runtime alike. A process waiting for its turn is blocked on a pipe, its pools
  idle; each block starts after a 50 ms pause and two untimed calls, so a runtime's idle
  threads wake before its timings start.

    .venv/bin/python bench/inference.py [--model models:/fashion_mnist-dcgan@champion] [--repeats 200]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import record  # noqa: E402  (after the path insert, like the pipeline imports below)
from bench.record import column, presented, series, times  # noqa: E402
from pipeline import quiet  # noqa: E402

ROUNDS = 10
SETTLE_S = 0.05
WARM_UP_CALLS = 3
# Which process runs which runtime, in the order they take turns; and how each process was made.
PROCESSES = {
    "tensorflow": ("keras_predict", "keras_call", "savedmodel"),
    "onnx_fp32": ("onnx_fp32",),
    "onnx_int8": ("onnx_int8",),
}
ONNX_FILES = {"onnx_fp32": "generator.onnx", "onnx_int8": "generator_int8.onnx"}
PROCESS_NOTE = {
    "tensorflow": "TensorFlow",
    "onnx_fp32": "onnxruntime only (no TensorFlow)",
    "onnx_int8": "onnxruntime only (no TensorFlow)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models:/fashion_mnist-dcgan@champion")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--batches", default="1,64")
    record.add_arguments(parser, "inference")
    args = parser.parse_args()
    quiet.setup()  # the worker processes inherit its environment

    from pipeline import tracking
    from serving.runtime import GeneratorRuntime

    tracking.setup("latentforge-bench")
    runtime = GeneratorRuntime.load(args.model)  # the card and the inputs; onnxruntime, no TensorFlow
    card = runtime.card
    folder = tracking.download(card["export_run_id"], "export", tempfile.mkdtemp())
    processes = {
        name: runtimes
        for name, runtimes in PROCESSES.items()
        if name not in ONNX_FILES or (folder / ONNX_FILES[name]).is_file()
    }
    workers = {name: Worker(name, folder, card, runtime.output) for name in processes}
    print(
        f"{args.model}: {card['model']}, latent {card['latent_dim']}, {os.cpu_count()} CPUs, {args.repeats} calls each"
    )
    print()
    print("| batch | runtime | median ms | images/s | × ONNX FP32 | process |")
    print("|---|---|---|---|---|---|")
    rows = []
    try:
        for batch in (int(b) for b in args.batches.split(",")):
            feed = runtime.feed(n=batch)  # every input from the model card's defaults, seed 0
            inputs = [feed[t.name] for t in runtime.signature.inputs]  # in the Keras network's order
            for worker in workers.values():
                worker.ask("load", feed, inputs)  # builds the calls and warms them up (tracing, graph optimization)
            times = _rounds(workers, processes, max(1, args.repeats // ROUNDS))
            rows += _batch_rows(batch, times, {r: p for p, rs in processes.items() for r in rs})
        versions, tensorflow_free = {}, {}
        for name, worker in workers.items():
            report = worker.ask("stop")
            versions.update({lib: version for lib, version in report["versions"].items() if version})
            tensorflow_free[name] = not report["tensorflow_imported"]
    finally:
        for worker in workers.values():
            worker.close()
    leaked = [name for name in ONNX_FILES if name in workers and not tensorflow_free[name]]
    if leaked:
        raise SystemExit(f"TensorFlow got imported in the onnxruntime process of {', '.join(leaked)}")
    record.write(
        "inference",
        args.results,
        parameters={"model": args.model, "repeats": args.repeats, "batches": args.batches, "rounds": ROUNDS},
        subject=_subject(args.model, card),
        rows=rows,
        summary=_speedups(rows),
        versions=versions,
        present=present,
    )


def _rounds(workers: dict, processes: dict, block: int) -> dict[str, list[float]]:
    """ROUNDS rounds in which each runtime, in turn, times ``block`` calls in its own process."""
    times = {runtime: [] for runtimes in processes.values() for runtime in runtimes}
    for _ in range(ROUNDS):
        for process, runtimes in processes.items():
            for runtime in runtimes:
                times[runtime] += workers[process].ask("time", runtime, block)
    return times


def _batch_rows(batch: int, times: dict[str, list[float]], process_of: dict[str, str]) -> list[dict]:
    medians = {name: statistics.median(t) for name, t in times.items()}
    rows = []
    for name, seconds in medians.items():
        ratio = seconds / medians["onnx_fp32"] if "onnx_fp32" in medians else None
        shown = f"{ratio:.2f}" if ratio is not None else "-"
        process = PROCESS_NOTE[process_of[name]]
        print(f"| {batch} | {name} | {seconds * 1000:.3f} | {batch / seconds:,.0f} | {shown} | {process} |")
        rows.append(
            {
                "batch": batch,
                "runtime": name,
                "calls": len(times[name]),
                "median_ms": seconds * 1000,
                "images_per_s": batch / seconds,
                "ratio_to_onnx_fp32": ratio,
                "process": process,
            }
        )
    return rows


def _subject(uri: str, card: dict) -> dict:
    """What was measured: the model URI and the card's kind, latent size and runs."""
    keys = ("model", "dataset", "latent_dim", "train_run_id", "export_run_id")
    return {"uri": uri, **{k: card[k] for k in keys if k in card}}


def _speedups(rows: list[dict]) -> dict:
    """Per batch: how many times faster ONNX FP32 is than the SavedModel and Keras, and INT8 than FP32."""
    summary = {}
    for batch in sorted({r["batch"] for r in rows}):
        ms = {r["runtime"]: r["median_ms"] for r in rows if r["batch"] == batch}
        if "onnx_fp32" not in ms:
            continue
        speedups = {f"onnx_fp32_over_{name}": ms[name] / ms["onnx_fp32"] for name in ms if not name.startswith("onnx")}
        if "onnx_int8" in ms:
            speedups["onnx_int8_over_onnx_fp32"] = ms["onnx_fp32"] / ms["onnx_int8"]
        summary[f"batch_{batch}"] = speedups
    return summary


# ---- the worker processes ------------------------------------------------------------------------
class Worker:
    """A process that runs one entry of PROCESSES, driven over a pipe by :meth:`ask`."""

    def __init__(self, name: str, folder: Path, card: dict, output: str):
        self.name = name
        context = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing imported but what it needs
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(name, str(folder), card, output, child), daemon=True)
        self.process.start()
        child.close()

    def ask(self, *request):
        self.connection.send(request)
        try:
            status, answer = self.connection.recv()
        except EOFError:
            raise SystemExit(f"the {self.name} process died (exit code {self.process.exitcode})") from None
        if status == "error":
            raise SystemExit(f"the {self.name} process failed:\n{answer}")
        return answer

    def close(self) -> None:
        self.connection.close()
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.kill()


def _serve(name: str, folder: str, card: dict, output: str, connection) -> None:
    """The worker's loop: ``load`` (feed, inputs) -> calls, ``time`` (runtime, block) -> seconds, ``stop``."""
    quiet.setup()
    calls = {}
    while True:
        request = connection.recv()
        try:
            if request[0] == "load":
                calls = _load(name, Path(folder), card, output, *request[1:])
                for call in calls.values():
                    for _ in range(WARM_UP_CALLS):
                        call()
                connection.send(("ok", None))
            elif request[0] == "time":
                connection.send(("ok", _time_block(calls[request[1]], request[2])))
            else:  # stop
                versions = {lib: str(getattr(sys.modules.get(lib), "__version__", "")) for lib in record.LIBRARIES}
                connection.send(("ok", {"versions": versions, "tensorflow_imported": "tensorflow" in sys.modules}))
                return
        except Exception:
            connection.send(("error", traceback.format_exc()))
            return


def _time_block(call, block: int) -> list[float]:
    # Let other processes' worker threads stop spinning, then two untimed calls: the first calls
    # after an idle spell wake this runtime's own pools.
    time.sleep(SETTLE_S)
    call()
    call()
    seconds = []
    for _ in range(block):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


_loaded: dict = {}  # per worker process: what _load built once (models, sessions), reused across batches


def _load(name: str, folder: Path, card: dict, output: str, feed: dict, inputs: list) -> dict:
    """The worker's calls for one batch, by runtime name (each returns a numpy array)."""
    if name in ONNX_FILES:
        if name not in _loaded:
            from serving.runtime import GeneratorRuntime

            _loaded[name] = GeneratorRuntime.load(str(folder / ONNX_FILES[name]))  # as generate and serve do
        runtime = _loaded[name]
        return {name: lambda: runtime.run_feed(feed)}
    if name not in _loaded:
        import tensorflow as tf

        from pipeline.loop import load_trained
        from serving.store import use_tracking_store

        use_tracking_store()
        model, _ = load_trained(card["train_run_id"])
        network = getattr(model, "exported_generator", model.generator)
        signature = tf.saved_model.load(str(folder / "generator_savedmodel")).signatures["generate"]
        _loaded[name] = network, signature
    import tensorflow as tf

    network, signature = _loaded[name]
    batch = len(inputs[0])
    inputs = inputs[0] if len(inputs) == 1 else inputs
    tensors = {k: tf.constant(v) for k, v in feed.items()}
    return {
        "keras_predict": lambda: network.predict(inputs, batch_size=batch, verbose=0),
        "keras_call": lambda: network(inputs, training=False).numpy(),
        "savedmodel": lambda: signature(**tensors)[output].numpy(),
    }


# ---- how docs/results.md shows the record (bench/report.py renders it) --------------------------
RUNTIME_NAMES = {
    "keras_predict": "Keras `predict`",
    "keras_call": "Keras call",
    "savedmodel": "SavedModel signature",
    "onnx_fp32": "ONNX FP32",
    "onnx_int8": "ONNX INT8 (QDQ)",
}


# How records without a process per row were measured: every runtime in the one benchmark process.
ONE_PROCESS = "one process for all runtimes (TensorFlow loaded)"


def _inference_tables(record: dict):
    rows = [
        {**r, "runtime": RUNTIME_NAMES.get(r["runtime"], r["runtime"]), "process": r.get("process", ONE_PROCESS)}
        for r in record["rows"]
    ]
    columns = [
        column("batch", "batch"),
        column("runtime", "runtime", "text"),
        column("median_ms", "median ms", "fixed:3"),
        column("images_per_s", "images/s", "fixed:0"),
        column("ratio_to_onnx_fp32", "× ONNX FP32 time", "fixed:2"),
        column("process", "process", "text"),
    ]
    return [("", columns, rows)]


RUNTIME_PROSE = {
    "keras_predict": "Keras `predict`",
    "keras_call": "a Keras call",
    "savedmodel": "the SavedModel signature",
}


def _inference_reading(record: dict) -> list[str]:
    lines = []
    for key, speedups in record.get("summary", {}).items():
        batch = key.removeprefix("batch_")
        parts = [
            f"{times(value)} as fast as {RUNTIME_PROSE.get(name, name)}"
            for name, value in ((k.removeprefix("onnx_fp32_over_"), v) for k, v in speedups.items())
            if name != "onnx_int8_over_onnx_fp32"
        ]
        sentence = f"At batch {batch}, ONNX FP32 is " + series(parts) + "."
        if "onnx_int8_over_onnx_fp32" in speedups:
            sentence += f" INT8 is {times(speedups['onnx_int8_over_onnx_fp32'])} as fast as FP32."
        lines.append(sentence)
    return lines


def present(record: dict) -> dict:
    """How docs/results.md shows this benchmark's record (``bench/record.py``)."""
    return presented(_inference_tables(record), _inference_reading(record))


if __name__ == "__main__":
    main()
