"""Benchmark: the DCGAN, progressive growing and StyleGAN side by side at equal training wall-clock.

Each model trains for ``--seconds`` of wall-clock per seed (default one hour), built and fed as the
train stage builds and feeds it (``bench/train_speed.build``), and is scored when its training
clock passes each of ``--checkpoints`` (default 15, 30 and 60 minutes; the scoring is off the
clock): FID, precision and recall (k = 3), and the entropy of the feature classifier's predicted
classes (nats; ln 10 = 2.30 when the ten classes are equally often drawn), all on ``--samples``
images of the generator that is exported (the EMA one) against the test split, with the
registered feature extractor, as the evaluate stage scores. Per model it also gives the
training images/s (images over training seconds) and the latency of its ONNX generator (exported
as the export stage exports it) in onnxruntime at batch 1 and 64, timed in a process without
TensorFlow (median of ``--latency-calls`` calls). The table gives, per model and checkpoint, the
median and [min-max] over seeds.

The study takes hours (3 models x 3 seeds x 1 hour), so it resumes: every finished (model, seed)
is kept under ``--state``, and so is a running one at each checkpoint (its weights, optimizer
state and training clock); a rerun of the same command skips the finished ones and continues the
unfinished one from its last checkpoint. Kept work is reused only while the code that trains,
exports and scores it (``models/``, ``pipeline/``, ``contract/``, ``export/``, and ``bench/`` less
``bench/results/``) is unchanged and committed; otherwise it starts over. Nothing else should run
on the machine meanwhile: each unit records, per stretch of training between checkpoints, the
load average and the CPU seconds its process got per second of training (``cpu_per_s``; 2.0 =
both cores of a 2-core machine all the time), and the host's speed when it started and ended
(``sgemm_gflops``: numpy float32 1024x1024 matmul, median of 7), so runs made on different days
or machines can be told apart.

When the study spans sessions on fresh machines, ``--units DIR`` also keeps each finished unit as
``DIR/<model>-seed<N>.json`` (a folder committed between sessions; ``bench/results/family_study_units``
by convention) and takes finished units from there, under the same rule on the code.

    .venv/bin/python bench/family_study.py [--models dcgan+ema=0.999,progan,stylegan] [--seeds 0,1,2]
        [--seconds 3600] [--checkpoints 900,1800] [--units DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench import record  # noqa: E402  (after the path insert)
from bench.record import column, presented  # noqa: E402

MODELS = "dcgan+ema=0.999,progan,stylegan"
METRICS = ("fid", "precision", "recall", "class_entropy")
CODE = ("models", "pipeline", "bench", "contract", "export")  # the code a kept unit depends on
RESULTS = "bench/results/"  # under bench/ but what studies write, not code: left out of CODE
LATENCY_BATCHES = (1, 64)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=MODELS, help="comma-separated families or presets, +field=value overrides")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--seconds", type=float, default=3600.0, help="training wall-clock per model and seed")
    parser.add_argument("--checkpoints", default="900,1800", help="also score at these training seconds")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--latency-calls", type=int, default=100, help="timed onnxruntime calls per batch size")
    parser.add_argument("--state", default=str(record.ROOT / ".bench-state" / "family_study"), help="kept work")
    parser.add_argument(
        "--identity",
        default="",
        help="what kept work must match (default: the committed code, bench/results left out)",
    )
    parser.add_argument("--units", default="", help="also keep finished units here, one JSON file each")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--tfds-dir", default="")
    parser.add_argument("--features-epochs", type=int, default=0, help="extractor recipe (tests): 0 = the default")
    parser.add_argument("--features-examples", type=int, default=0, help="extractor recipe (tests): 0 = all")
    record.add_arguments(parser, "family_study")
    args = parser.parse_args()
    names = [n for n in args.models.split(",") if n]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    checkpoints = sorted({float(c) for c in args.checkpoints.split(",") if c and float(c) < args.seconds})
    if not names or not seeds or args.seconds <= 0:
        parser.error("give at least one model, one seed and a positive --seconds")

    from bench.equal_time import kept_identity, scoring_setup

    spec, extractor, real = scoring_setup(args)
    identity = kept_identity(args.identity or code_identity(), extractor)
    print(
        f"family study: {args.seconds:.0f} s of training per model and seed (scored at "
        f"{', '.join(f'{c:.0f}' for c in checkpoints + [args.seconds])} s), batch {args.batch_size}, "
        f"{args.samples} samples, extractor {extractor.version}; kept work in {args.state}"
        + ("" if identity else " (uncommitted code: nothing is kept)"),
        flush=True,
    )
    context = Study(args, spec, extractor, real, checkpoints, identity)
    units = [context.run(name, seed) for seed in seeds for name in names]
    latency = {name: context.latency(name, [u for u in units if u["model"] == name]) for name in names}
    summary = summarize(units, names, checkpoints + [args.seconds], latency)
    print_table(summary)
    record.write(
        "family_study",
        args.results,
        parameters={
            "models": names,
            "seeds": seeds,
            "seconds": args.seconds,
            "checkpoints": checkpoints,
            "batch_size": args.batch_size,
            "samples": args.samples,
            "dataset": args.dataset,
            "latency_calls": args.latency_calls,
        },
        subject={"extractor": extractor.version, "extractor_identity": extractor.identity},
        rows=[row for unit in units for row in unit["scores"]],
        summary=targets(summary, names, args.seconds),
        tables={"summary": summary, "units": [{k: v for k, v in u.items() if k != "scores"} for u in units]},
        present=present,
    )


def code_identity(root: Path = record.ROOT) -> str:
    """The state of ``CODE`` at HEAD, or "" when any of it has uncommitted changes.

    ``bench/results/`` is left out on both counts: committing a finished unit or a study's record
    there, or a unit written there and not yet committed, changes no code, so kept work stays.
    """
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", *CODE, f":(exclude){RESULTS}"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    if dirty.returncode != 0 or dirty.stdout.strip():
        return ""
    parts = []
    for path in CODE:
        listing = subprocess.run(["git", "ls-tree", "-r", "HEAD", "--", path], cwd=root, capture_output=True, text=True)
        lines = [line for line in listing.stdout.splitlines() if not line.split("\t", 1)[-1].startswith(RESULTS)]
        if listing.returncode != 0 or not lines:
            return ""
        parts.append(hashlib.sha1("\n".join(lines).encode()).hexdigest()[:12])
    return "-".join(parts)


def slug(name: str, seed: int) -> str:
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", name) + f"-seed{seed}"


def augment_probability(model) -> float | None:
    """ADA's current p: latentforge's (``model.augment``) or the keras-io peer's (``model.augmenter``)."""
    augment = getattr(model, "augment", None)
    if augment is not None and getattr(augment, "kind", "") == "ada":
        return float(augment.p.numpy())
    augmenter = getattr(model, "augmenter", None)
    return float(augmenter.probability.numpy()) if augmenter is not None else None


class Study:
    """Runs (model, seed) units, keeping their results and progress under ``args.state``."""

    def __init__(self, args, spec, extractor, real, checkpoints, identity: str):
        self.args, self.spec, self.extractor, self.real = args, spec, extractor, real
        self.checkpoints, self.identity = checkpoints, identity
        self.onnx: dict[str, Path] = {}  # model -> its trained ONNX generator, exported in this process
        self.folder = Path(args.state)

    def _kept(self, path: Path) -> dict | None:
        if not self.identity or not path.is_file():
            return None
        kept = json.loads(path.read_text())
        return kept if kept.get("code") == self.identity else None

    def run(self, name: str, seed: int) -> dict:
        """Train one model for one seed (or take it from the kept state); its unit record."""
        from bench.equal_time import batch_size_of, train_for
        from bench.train_speed import build, keras_clear

        unit = self.folder / slug(name, seed)
        shared = Path(self.args.units) / f"{slug(name, seed)}.json" if self.args.units else None
        done = self._kept(unit / "result.json") or (self._kept(shared) if shared else None)
        if done is not None:
            print(f"  {name} seed {seed}: kept from {done['date']}", flush=True)
            return done
        batch = batch_size_of(name, self.args.batch_size)
        model, data = build(name, self.spec, batch, seed=seed)
        generator = model.exported_generator if hasattr(model, "exported_generator") else model.generator
        signature = model.export_signature
        value_range = getattr(model, "value_range", "tanh")
        progress = self._kept(unit / "progress.json") or {
            "steps": 0,
            "train_s": 0.0,
            "scores": [],
            "load": [],
            "cpu_per_s": [],
            "sgemm_gflops": [],
        }
        progress.setdefault("sgemm_gflops", []).append(sgemm_gflops())
        if progress["steps"]:
            model.build_optimizers()
            model.load_weights(str(unit / "state.weights.h5"))
            print(f"  {name} seed {seed}: resumed at {progress['train_s']:.0f} s of training", flush=True)

        stretch = {"cpu": time.process_time(), "train_s": progress["train_s"]}

        def checkpoint(steps, elapsed):
            steps, elapsed = progress["steps"] + steps, progress["train_s"] + elapsed
            cpu = time.process_time() - stretch["cpu"]
            progress["cpu_per_s"].append(round(cpu / max(elapsed - stretch["train_s"], 1e-9), 2))
            progress["load"].append(round(os.getloadavg()[0], 2))
            scores = self.score(generator, signature, seed, value_range)
            point = {"model": name, "seed": seed, "steps": steps, "train_s": round(elapsed, 1)}
            probability = augment_probability(model)
            if probability is not None:  # ADA's p where the recipe adapts one
                point["augment_p"] = round(probability, 4)
            progress["scores"].append({**point, **scores})
            stretch.update(cpu=time.process_time(), train_s=elapsed)
            print(
                f"    {name} seed {seed}: {elapsed:6.0f} s, {steps} steps: "
                + ", ".join(f"{k} {scores[k]:.4g}" for k in METRICS),
                flush=True,
            )
            return steps, elapsed

        def keep(steps, elapsed):
            if not self.identity:
                return
            unit.mkdir(parents=True, exist_ok=True)
            partial = unit / "state.partial.weights.h5"
            model.save_weights(str(partial))
            partial.replace(unit / "state.weights.h5")
            state = {**progress, "steps": steps, "train_s": round(elapsed, 3), "code": self.identity}
            write_json(unit / "progress.json", state)

        # the checkpoints not scored yet (one may have passed already, in the step before the kill)
        pending = [c - progress["train_s"] for c in self.checkpoints[len(progress["scores"]) :]]
        started = progress["steps"], progress["train_s"]

        def at_checkpoint(steps, elapsed):
            keep(*checkpoint(steps, elapsed))

        steps, seconds = train_for(model, data, self.args.seconds - started[1], pending, at_checkpoint)
        steps, seconds = checkpoint(steps, seconds)
        result = {
            "model": name,
            "seed": seed,
            "batch_size": batch,
            "steps": steps,
            "train_s": round(seconds, 1),
            "images_per_s": round(steps * batch / seconds, 1),
            "load_average": progress["load"],
            "cpu_per_s": progress["cpu_per_s"],
            "sgemm_gflops": [*progress["sgemm_gflops"], sgemm_gflops()],
            "host_cpu": record.machine()["cpu"],
            "scores": progress["scores"],
            "code": self.identity,
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        }
        if name not in self.onnx:
            self.onnx[name] = self.export_onnx(generator, signature, name)
        if self.identity:
            unit.mkdir(parents=True, exist_ok=True)
            write_json(unit / "result.json", result)
            if shared:
                shared.parent.mkdir(parents=True, exist_ok=True)
                write_json(shared, result)
            (unit / "state.weights.h5").unlink(missing_ok=True)
        keras_clear()
        return result

    def score(self, generator, signature, seed: int, value_range: str = "tanh") -> dict:
        from bench.equal_time import sample
        from pipeline import metrics

        fake, logits = self.extractor(sample(generator, self.args.samples, seed, signature, value_range))
        precision, recall = metrics.precision_recall(self.real, fake, k=3)
        return {
            "fid": round(metrics.fid_between(self.real, fake), 3),
            "precision": round(precision, 4),
            "recall": round(recall, 4),
            "class_entropy": round(metrics.class_coverage(logits, logits.shape[-1])["class_entropy"], 4),
        }

    def onnx_path(self, name: str) -> Path:
        folder = self.folder / "onnx" if self.identity else Path(tempfile.mkdtemp(prefix="family_study-"))
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{slug(name, 0)}.onnx"

    def export_onnx(self, generator, signature, name: str) -> Path:
        """The trained generator as the export stage writes it (a ProGAN's at its final level)."""
        from export.files import write_onnx

        return write_onnx(generator, signature, self.onnx_path(name))

    def latency(self, name: str, units: list[dict]) -> dict:
        """ONNX latency (ms, median) at each of ``LATENCY_BATCHES``, in a process without TensorFlow,
        of the generator a unit of ``name`` exported (kept with the units; when none was kept, as in a
        study finished on another machine than its units, a fresh build's, grown to the level its
        units ended at: the weights do not change the work, a ProGAN's level does)."""
        from bench.equal_time import batch_size_of
        from bench.train_speed import build

        model, _ = build(name, self.spec, batch_size_of(name, self.args.batch_size))
        path = self.onnx.get(name) or self.onnx_path(name)
        if not path.is_file():
            if hasattr(model, "images_seen") and units:
                model.images_seen.assign(float(min(u["steps"] * u["batch_size"] for u in units)))
            generator = model.exported_generator if hasattr(model, "exported_generator") else model.generator
            path = self.export_onnx(generator, model.export_signature, name)
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            return pool.apply(time_onnx, (str(path), model.export_signature, LATENCY_BATCHES, self.args.latency_calls))


def time_onnx(path: str, signature, batches, calls: int) -> dict:
    """Median milliseconds per call of the ONNX generator at each batch size (onnxruntime's
    default session options, as ``GeneratorRuntime`` loads a model; inputs at their defaults)."""
    import onnxruntime as ort

    from contract.signature import default_feed

    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    out = {}
    for batch in batches:
        feed = default_feed(signature.inputs, batch, seed=0)
        for _ in range(5):
            session.run(None, feed)
        seconds = []
        for _ in range(calls):
            started = time.perf_counter()
            session.run(None, feed)
            seconds.append(time.perf_counter() - started)
        out[f"onnx_ms_batch{batch}"] = round(1000 * statistics.median(seconds), 3)
    return out


def sgemm_gflops(size: int = 1024, repeats: int = 7) -> float:
    """The host's float32 matmul speed now (GFLOP/s, median of ``repeats``): a day-to-day yardstick."""
    import numpy as np

    a = np.random.default_rng(0).standard_normal((size, size), dtype=np.float32)
    b = np.ascontiguousarray(a.T)
    a @ b
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        seconds.append(time.perf_counter() - started)
    return round(2 * size**3 / statistics.median(seconds) / 1e9, 1)


def write_json(path: Path, value: dict) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(value, indent=2) + "\n")
    partial.replace(path)


def spread(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 4), "min": min(values), "max": max(values)}


def summarize(units: list[dict], names: list[str], times: list[float], latency: dict) -> list[dict]:
    """Per model and scoring time: median, min and max over seeds of each metric, images/s, latency."""
    rows = []
    for name in names:
        mine = [u for u in units if u["model"] == name]
        for index, at in enumerate(times):
            scores = [u["scores"][index] for u in mine]
            rows.append(
                {
                    "model": name,
                    "minutes": round(at / 60, 2),
                    **{metric: spread([s[metric] for s in scores]) for metric in METRICS},
                    "steps": statistics.median(s["steps"] for s in scores),
                    "images_per_s": spread([u["images_per_s"] for u in mine]),
                    **latency[name],
                }
            )
    return rows


def targets(summary: list[dict], names: list[str], seconds: float) -> dict:
    """The issue's comparison: StyleGAN's median FID at the end against the DCGAN's."""
    final = {row["model"]: row for row in summary if row["minutes"] == round(seconds / 60, 2)}
    out = {f"{name}_fid_median_at_end": final[name]["fid"]["median"] for name in names}
    dcgan = next((n for n in names if n.startswith("dcgan")), None)
    stylegan = next((n for n in names if n.startswith("stylegan")), None)
    if dcgan and stylegan:
        out["stylegan_fid_lower_than_dcgan_pct"] = round(
            100 * (1 - final[stylegan]["fid"]["median"] / final[dcgan]["fid"]["median"]), 1
        )
    return out


def print_table(summary: list[dict]) -> None:
    print(
        f"{'model':<24}{'min':>5}  {'FID':<22}{'precision':<21}{'recall':<21}{'class entropy':<21}"
        f"{'img/s':>7}{'onnx b1 ms':>11}{'b64 ms':>8}"
    )
    for row in summary:
        cells = "".join(
            f"{row[m]['median']:>7.3g} [{row[m]['min']:.3g}-{row[m]['max']:.3g}]".ljust(21 if m != "fid" else 22)
            for m in METRICS
        )
        print(
            f"{row['model']:<24}{row['minutes']:>5.4g}  {cells}{row['images_per_s']['median']:>7.1f}"
            f"{row['onnx_ms_batch1']:>11.2f}{row['onnx_ms_batch64']:>8.2f}"
        )


# ---- how docs/results.md shows the record (bench/report.py renders it) --------------------------
STUDY_METRICS = (
    ("fid", "FID", 2),
    ("precision", "precision", 3),
    ("recall", "recall", 3),
    ("class_entropy", "class entropy", 3),
)


def _family_study_tables(record: dict):
    columns = [column("model", "model", "text"), column("minutes", "training min", "plain")]
    columns += [column(key, header, f"range:{digits}") for key, header, digits in STUDY_METRICS]
    columns += [
        column("images_per_s", "training images/s", "range:1"),
        column("onnx_ms_batch1", "ONNX ms, batch 1", "fixed:2"),
        column("onnx_ms_batch64", "ONNX ms, batch 64", "fixed:2"),
    ]
    units = [
        column("model", "model", "text"),
        column("seed", "seed"),
        column("batch_size", "batch"),
        column("steps", "steps", "fixed:0"),
        column("train_s", "training s", "fixed:0"),
        column("images_per_s", "images/s", "fixed:1"),
        column("cpu_per_s", "CPU s per training s, each stretch", "list:2"),
        column("load_average", "load average, each checkpoint", "list:1"),
        column("sgemm_gflops", "host sgemm GFLOP/s, start … end", "list:0"),
        column("date", "finished", "text"),
    ]
    return [
        ("Median [min–max] over seeds", columns, record["tables"]["summary"]),
        ("Every run", units, record["tables"]["units"]),
    ]


def _family_study_reading(record: dict) -> list[str]:
    parameters, summary = record["parameters"], record.get("summary", {})
    lines = [
        f"Each model trained for {parameters['seconds'] / 60:,.0f} minutes per seed (seeds "
        f"{', '.join(str(s) for s in parameters['seeds'])}) at its preset's batch size (batch "
        f"{parameters['batch_size']} where the preset sets none; each run's is in the second table), scored "
        f"on {parameters['samples']:,} samples at each checkpoint, the scoring off the training clock."
    ]
    if "stylegan_fid_lower_than_dcgan_pct" in summary:
        lines.append(
            f"At the end, StyleGAN's median FID is {summary['stylegan_fid_lower_than_dcgan_pct']:.1f}% lower than "
            "the DCGAN's (negative: higher)."
        )
    return lines


def present(record: dict) -> dict:
    """How docs/results.md shows this benchmark's record (``bench/record.py``)."""
    return presented(_family_study_tables(record), _family_study_reading(record))


if __name__ == "__main__":
    main()
