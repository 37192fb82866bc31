"""Benchmark: sample quality at equal training wall-clock, latentforge's DCGAN recipes vs the
textbook peer DCGAN (``bench/peer.py``).

Each model trains on the real input pipeline for the same number of wall-clock seconds (counted
from the start of ``fit``, so graph tracing counts too), once per seed; the models take turns
(peer, ours, peer, ours…, the order reversed every other seed) so a slow spell of this shared
machine falls on both. Then each generator (the weight EMA when the recipe has one, as the
export stage hands out) draws 10,000 samples from seeded latents, scored exactly as the evaluate
stage scores them: the registered feature extractor (``pipeline/features.py``) and the Fréchet
distance to the test split's features. Prints a table per seed and the median over seeds, and
writes them to ``bench/results/equal_time.json`` (``bench/record.py``).

    .venv/bin/python bench/equal_time.py --seconds 240 --seeds 0,1,2 --models peer-dcgan,dcgan

``--models`` takes what ``bench/train_speed.py`` takes: ``peer-dcgan``, family or preset names,
and ``+field=value`` overrides (``dcgan+ema=0``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench import record  # noqa: E402  (after the path insert)

PEER = "peer-dcgan"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=f"{PEER},dcgan", help="comma-separated; the first is the reference")
    parser.add_argument("--seconds", type=float, default=240.0, help="training wall-clock per model and seed")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--checkpoints", default="", help="also score at these training seconds, e.g. 60,120")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--tfds-dir", default="")
    parser.add_argument(
        "--features-epochs", type=int, default=0, help="extractor recipe (tests): 0 = the standard, registered one"
    )
    parser.add_argument("--features-examples", type=int, default=0, help="extractor recipe (tests): 0 = all")
    record.add_arguments(parser, "equal_time")
    args = parser.parse_args()
    names = [n for n in args.models.split(",") if n]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    if len(names) < 2 or not seeds or args.seconds <= 0:
        parser.error("give at least two models, one seed and a positive --seconds")

    spec, extractor, real = scoring_setup(args)
    from bench.train_speed import build, keras_clear

    print(
        f"equal-time benchmark: {args.seconds:.0f} s of training per model and seed, batch {args.batch_size}, "
        f"FID of {args.samples} samples with extractor {extractor.version} ({extractor.identity})",
        flush=True,
    )
    checkpoints = [float(c) for c in args.checkpoints.split(",") if c]
    rows, curve = [], []
    for index, seed in enumerate(seeds):
        order = names if index % 2 == 0 else names[::-1]
        for name in order:
            batch = batch_size_of(name, args.batch_size)
            model, data = build(name, spec, batch, seed=seed)
            generator = model.exported_generator if hasattr(model, "exported_generator") else model.generator
            signature = getattr(model, "export_signature", None)

            def checkpoint(steps, elapsed, name=name, seed=seed, generator=generator, batch=batch, signature=signature):
                fid = score(generator, extractor, real, args.samples, seed, signature)
                curve.append(
                    {"model": name, "seed": seed, "steps": steps, "train_s": round(elapsed, 1), "fid": round(fid, 2)}
                )
                print(f"    seed {seed} {name}: {steps} steps, {elapsed:.0f} s: FID {fid:.2f}", flush=True)

            steps, seconds = train_for(model, data, args.seconds, checkpoints, checkpoint)
            fid = score(generator, extractor, real, args.samples, seed, signature)
            row = {
                "model": name,
                "seed": seed,
                "steps": steps,
                "batch_size": batch,
                "images": steps * batch,
                "train_s": round(seconds, 1),
                "fid": round(fid, 2),
            }
            rows.append(row)
            print(f"  seed {seed} {name:<28} {steps:>6} steps  {seconds:6.0f} s  FID {fid:7.2f}", flush=True)
            del model, data
            keras_clear()
    summary = summarize(rows, names)
    print_table(summary)
    record.write(
        "equal_time",
        args.results,
        parameters={
            "models": names,
            "seconds": args.seconds,
            "seeds": seeds,
            "batch_size": args.batch_size,
            "samples": args.samples,
            "checkpoints": checkpoints,
            "dataset": args.dataset,
        },
        subject={"extractor": extractor.version, "extractor_identity": extractor.identity, "reference": names[0]},
        rows=rows,
        tables={"summary": summary, **({"curve": curve} if curve else {})},
    )


def scoring_setup(args):
    """What a benchmark that trains and scores needs, made as the stages make it: thread pools
    sized before any TensorFlow op, the libraries quieted, the bench experiment, the dataset
    (``args.dataset``, ``args.tfds_dir``), the registered feature extractor (``args.features_epochs``,
    ``args.features_examples``: its recipe) and the test split's features. (spec, extractor, real)."""
    from pipeline import quiet, runtime_setup

    runtime_setup.configure_threads()  # as the train stage does, before any TensorFlow op
    quiet.setup()

    from pipeline import features, inputs, tracking

    tracking.setup("latentforge-bench")
    spec = inputs.describe(args.dataset, args.tfds_dir)
    extractor = features.get_extractor(
        spec, epochs=args.features_epochs or features.EPOCHS, examples=args.features_examples
    )
    return spec, extractor, extractor.real_features(spec, "test")


def batch_size_of(name: str, default: int) -> int:
    """A model's batch size: its ``+batch_size=N`` override, else its preset's, else ``default``."""
    from pipeline import presets

    base, *overrides = name.split("+")
    for item in overrides:
        if item.startswith("batch_size="):
            return int(item.split("=", 1)[1])
    return int(presets.PRESETS.get(base, {}).get("batch_size", default))


def train_for(model, data, seconds: float, checkpoints=(), at_checkpoint=None) -> tuple[int, float]:
    """Train until ``seconds`` of wall-clock have passed (checked after each step); (steps, seconds).

    ``at_checkpoint(steps, elapsed)`` runs when the training clock passes each of ``checkpoints``
    (seconds); its own time is left off the clock."""
    import keras

    pending = sorted(c for c in checkpoints if c < seconds)

    class Budget(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.steps, self.started, self.elapsed = 0, 0.0, 0.0

        def on_train_begin(self, logs=None):
            self.started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.steps += 1
            self.elapsed = time.perf_counter() - self.started
            if pending and self.elapsed >= pending[0]:
                pending.pop(0)
                paused = time.perf_counter()
                at_checkpoint(self.steps, self.elapsed)
                self.started += time.perf_counter() - paused
            if self.elapsed >= seconds:
                self.model.stop_training = True

    budget = Budget()
    model.fit(data, steps_per_epoch=1000, epochs=1_000_000, verbose=0, callbacks=[budget], shuffle=False)
    return budget.steps, budget.elapsed


def score(generator, extractor, real, samples: int, seed: int, signature=None) -> float:
    """The evaluate stage's FID of ``samples`` images of ``generator`` (``sample``)."""
    from pipeline import metrics

    sample_features, _ = extractor(sample(generator, samples, seed, signature))
    return metrics.fid_between(real, sample_features)


def sample(generator, samples: int, seed: int, signature=None):
    """``samples`` images in [0, 1] of ``generator`` from seeded latents, as the evaluate stage
    makes them; a generator with more inputs than z (``signature``: StyleGAN's z2, mix, psi,
    noise) gets their defaults, as the evaluate stage feeds them."""
    import numpy as np

    from models import signature as signatures
    from pipeline import evaluate

    # from the signature where there is one: a ProGAN's grown generator is a subclassed model
    # without symbolic inputs
    latent_dim = signature.inputs[0].shape[-1] if signature is not None else generator.inputs[0].shape[-1]

    def run(z, seed):
        if signature is None or len(signature.inputs) == 1:
            return np.asarray(generator(z, training=False))
        feed = signatures.default_feed(signature.inputs, len(z), seed)
        feed[signature.inputs[0].name] = z
        return np.asarray(signatures.call(generator, signature, feed))

    return evaluate.generate(run, latent_dim, samples, seed, "tanh")


def summarize(rows: list[dict], names: list[str]) -> list[dict]:
    """Per model: median FID over seeds, its ratio to the reference's, median steps."""
    reference = statistics.median(r["fid"] for r in rows if r["model"] == names[0])
    summary = []
    for name in names:
        mine = [r for r in rows if r["model"] == name]
        fid = statistics.median(r["fid"] for r in mine)
        summary.append(
            {
                "model": name,
                "fid_median": round(fid, 2),
                "fid_per_seed": [r["fid"] for r in sorted(mine, key=lambda r: r["seed"])],
                "fid_vs_reference": round(fid / reference, 3),
                "fid_lower_than_reference_pct": round(100 * (1 - fid / reference), 1),
                "steps_median": statistics.median(r["steps"] for r in mine),
            }
        )
    return summary


def print_table(summary: list[dict]) -> None:
    print(f"{'model':<30}{'median FID':>11}{'x ref':>8}{'lower %':>9}{'steps':>8}  per seed")
    for s in summary:
        print(
            f"{s['model']:<30}{s['fid_median']:>11.2f}{s['fid_vs_reference']:>8.3f}"
            f"{s['fid_lower_than_reference_pct']:>9.1f}{s['steps_median']:>8.0f}  {s['fid_per_seed']}"
        )


if __name__ == "__main__":
    main()
