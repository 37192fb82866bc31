"""Benchmark: generator inference latency per runtime, side by side in one run.

For a registered generator (default the champion DCGAN) at batch 1 and 64: Keras ``predict``,
Keras direct call, the SavedModel signature, ONNX FP32 and ONNX INT8 (onnxruntime, CPU).
Prints the median latency over --repeats calls (after warm-up), images/s, and each runtime's
ratio to ONNX FP32 (> 1 = slower than ONNX FP32), and writes them with their provenance to
bench/results/inference.json (``bench/record.py``; rendered by ``bench/report.py``). The
runtimes take turns in 10 rounds of short blocks, so machine noise hits them alike; each block
starts after a 50 ms pause and two untimed calls.

    .venv/bin/python bench/inference.py [--model models:/fashion_mnist-dcgan@champion] [--repeats 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench import record  # noqa: E402  (after the path insert, like the pipeline imports below)

ROUNDS = 10
SETTLE_S = 0.05


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models:/fashion_mnist-dcgan@champion")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--batches", default="1,64")
    record.add_arguments(parser, "inference")
    args = parser.parse_args()

    import onnxruntime as ort
    import tensorflow as tf

    from pipeline import tracking
    from pipeline.train import load_trained
    from serving.runtime import GeneratorRuntime

    tracking.setup("latentforge-bench")
    runtime = GeneratorRuntime.load(args.model)
    card, output = runtime.card, runtime.output
    model, _ = load_trained(card["train_run_id"])
    network = getattr(model, "exported_generator", model.generator)
    folder = tracking.download(card["export_run_id"], "export", tempfile.mkdtemp())
    signature = tf.saved_model.load(str(folder / "generator_savedmodel")).signatures["generate"]
    sessions = {
        name: ort.InferenceSession(str(folder / f), providers=["CPUExecutionProvider"])
        for name, f in (("onnx_fp32", "generator.onnx"), ("onnx_int8", "generator_int8.onnx"))
        if (folder / f).is_file()
    }
    print(
        f"{args.model}: {card['model']}, latent {card['latent_dim']}, {os.cpu_count()} CPUs, {args.repeats} calls each"
    )
    print()
    print("| batch | runtime | median ms | images/s | × ONNX FP32 |")
    print("|---|---|---|---|---|")
    rows = []
    for batch in (int(b) for b in args.batches.split(",")):
        feed = runtime.feed(n=batch)  # every input from the model card's defaults, seed 0
        values = [feed[t.name] for t in runtime.signature.inputs]
        inputs = values[0] if len(values) == 1 else values
        tensors = {k: tf.constant(v) for k, v in feed.items()}
        runtimes = {
            "keras_predict": lambda inputs=inputs, b=batch: network.predict(inputs, batch_size=b, verbose=0),
            "keras_call": lambda inputs=inputs: network(inputs, training=False).numpy(),
            "savedmodel": lambda t=tensors: signature(**t)[output].numpy(),
            **{name: (lambda s=s, f=feed: s.run([output], f)[0]) for name, s in sessions.items()},
        }
        times = {name: [] for name in runtimes}
        for fn in runtimes.values():  # warm-up (tracing, graph optimization)
            for _ in range(3):
                fn()
        # Rounds of short blocks, runtimes in turn: machine noise hits them alike, and a
        # runtime's worker threads (TensorFlow's spin after each call) do not land inside
        # every single timing of the next one, as strict call-by-call alternation would.
        block = max(1, args.repeats // ROUNDS)
        for _ in range(ROUNDS):
            for name, fn in runtimes.items():
                # Let the previous runtime's worker threads stop spinning (TensorFlow's and
                # onnxruntime's pools busy-wait after a call), then two untimed calls: otherwise
                # whichever runtime comes after TensorFlow pays for its idle threads.
                time.sleep(SETTLE_S)
                fn()
                fn()
                for _ in range(block):
                    started = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - started)
        medians = {name: statistics.median(t) for name, t in times.items()}
        for name, seconds in medians.items():
            ratio = seconds / medians["onnx_fp32"] if "onnx_fp32" in medians else None
            shown = f"{ratio:.2f}" if ratio is not None else "-"
            print(f"| {batch} | {name} | {seconds * 1000:.3f} | {batch / seconds:,.0f} | {shown} |")
            rows.append(
                {
                    "batch": batch,
                    "runtime": name,
                    "calls": len(times[name]),
                    "median_ms": seconds * 1000,
                    "images_per_s": batch / seconds,
                    "ratio_to_onnx_fp32": ratio,
                }
            )
    record.write(
        "inference",
        args.results,
        parameters={"model": args.model, "repeats": args.repeats, "batches": args.batches, "rounds": ROUNDS},
        subject=_subject(args.model, card),
        rows=rows,
        summary=_speedups(rows),
    )


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


if __name__ == "__main__":
    main()
