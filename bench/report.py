"""Render docs/results.md from every bench/results/*.json that the benchmarks wrote (``bench/record.py``).

One section per benchmark: what it measures, its table(s), how to read them, and where the
numbers come from (command, commit, date, machine). Every number in the document comes from
the JSON files; the prose around them is fixed, or computed from the same files. The output
depends on the JSON files only, so running it twice gives the same file. The README's one number
(how long the first ``bin/run`` takes) is rendered too, between ``<!-- first_run -->`` markers.

    .venv/bin/python bench/report.py            # (re)write docs/results.md and the README's marked span
    .venv/bin/python bench/report.py --check    # exit 1 when either is not what the JSON gives
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
OUTPUT = ROOT / "docs" / "results.md"
README = ROOT / "README.md"
# The README's numbers are rendered too, between these markers, from bench/results/first_run.json.
README_MARKERS = ("<!-- first_run -->", "<!-- /first_run -->")
# Sections in this order; others follow, by name.
ORDER = ("first_run", "train_speed", "equal_time", "recipe_screen", "inference", "serving", "evaluate", "mode_collapse")
MISSING = "not recorded"


# ---- number formats ---------------------------------------------------------------------------
def fixed(digits: int) -> Callable[[object], str]:
    """A formatter with `digits` decimals and thousands separators; None reads as '-'."""
    return lambda v: "-" if v is None else f"{v:,.{digits}f}"


def plain(value: object) -> str:
    """Any JSON value as a cell: floats with 4 significant digits, code-ish strings as code."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, str):
        return f"`{value}`"
    return f"`{json.dumps(value, sort_keys=True)}`"


def times(value: float | None) -> str:
    """A ratio for prose: whole numbers from 10 up, one decimal below."""
    if value is None:
        return "-"
    return f"{value:,.0f}×" if value >= 10 else f"{value:.1f}×"


@dataclass(frozen=True)
class Column:
    key: str
    header: str
    format: Callable[[object], str] = plain


@dataclass(frozen=True)
class Section:
    """How one benchmark is shown: title, what it measures, its tables, how to read them."""

    title: str
    about: str
    tables: Callable[[dict], list[tuple[str, list[Column], list[dict]]]]
    reading: Callable[[dict], list[str]] = field(default=lambda record: [])


# ---- inference ---------------------------------------------------------------------------------
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
        Column("batch", "batch"),
        Column("runtime", "runtime", str),
        Column("median_ms", "median ms", fixed(3)),
        Column("images_per_s", "images/s", fixed(0)),
        Column("ratio_to_onnx_fp32", "× ONNX FP32 time", fixed(2)),
        Column("process", "process", str),
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
        sentence = f"At batch {batch}, ONNX FP32 is " + _series(parts) + "."
        if "onnx_int8_over_onnx_fp32" in speedups:
            sentence += f" INT8 is {times(speedups['onnx_int8_over_onnx_fp32'])} as fast as FP32."
        lines.append(sentence)
    return lines


def _series(parts: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


INFERENCE = Section(
    title="Inference latency by runtime",
    about=(
        "The registered generator, run the ways a user can run it: Keras `predict`, a direct Keras call, "
        "the exported SavedModel's `generate` signature, and the ONNX file (FP32 and its INT8 twin) in "
        "onnxruntime on the CPU. The process column says where each row ran: `bench/inference.py` runs each "
        "ONNX file in its own process that never imports TensorFlow, as `latentforge generate` and `serve` run "
        "it, and the Keras and SavedModel runtimes in one TensorFlow process; earlier records ran every runtime "
        "in one process, where TensorFlow's thread pools competed with onnxruntime's. The runtimes take turns "
        "in rounds of short blocks on the same latents, so machine noise hits them alike; each block starts "
        "after a short pause and two untimed calls."
    ),
    tables=_inference_tables,
    reading=_inference_reading,
)


# ---- serving -----------------------------------------------------------------------------------
SERVER_NAMES = {"latentforge": "`latentforge serve`", "mlflow": "`mlflow models serve`"}


def _serving_tables(record: dict):
    rows = [{**r, "server": SERVER_NAMES.get(r["server"], r["server"])} for r in record["rows"]]
    columns = [
        Column("server", "server", str),
        Column("concurrency", "concurrency"),
        Column("requests", "requests"),
        Column("rps", "requests/s", fixed(0)),
        Column("p50_ms", "p50 ms", fixed(2)),
        Column("p99_ms", "p99 ms", fixed(2)),
        Column("errors", "errors"),
        Column("ratio_to_mlflow", "× mlflow requests/s", fixed(1)),
    ]
    return [("", columns, rows)]


def _serving_reading(record: dict) -> list[str]:
    ours = [r for r in record["rows"] if r["server"] == "latentforge" and r.get("ratio_to_mlflow") is not None]
    lines = []
    if ours:
        lines.append(
            "`latentforge serve` answered "
            + _series([times(r["ratio_to_mlflow"]) for r in ours])
            + " the requests per second of `mlflow models serve` at concurrency "
            + _series([str(r["concurrency"]) for r in ours])
            + "."
        )
    errors = sum(row.get("errors", 0) for row in record["rows"])
    lines.append(f"Errors over all levels: {errors}.")
    return lines


SERVING = Section(
    title="HTTP serving",
    about=(
        "The same registered generator behind `latentforge serve` (FastAPI, onnxruntime, micro-batching of "
        "concurrent requests) and behind `mlflow models serve`, on loopback, one image per request, over "
        "keep-alive connections from a light asyncio client that shares the machine with the server. "
        "Each concurrency level runs until its request budget or its time budget ends (the parameters below)."
    ),
    tables=_serving_tables,
    reading=_serving_reading,
)


# ---- evaluate ----------------------------------------------------------------------------------
def _evaluate_tables(record: dict):
    steps = [
        Column("step", "step", str),
        Column("median_s", "median s", fixed(3)),
        Column("min_s", "min s", fixed(3)),
        Column("max_s", "max s", fixed(3)),
    ]
    rows = list(record["rows"])
    if "total_median_s" in record.get("summary", {}):
        rows.append({"step": "**total**", "median_s": record["summary"]["total_median_s"]})
    scores = [
        Column("metric", "metric"),
        Column("median", "median"),
        Column("min", "min"),
        Column("max", "max"),
    ]
    return [("Seconds per step", steps, rows), ("Scores", scores, record.get("tables", {}).get("scores", []))]


def _evaluate_reading(record: dict) -> list[str]:
    parameters = record["parameters"]
    return [
        f"Each repeat generated {parameters['samples']:,} samples with its own seed; the table shows the median "
        f"over {parameters['repeats']} repeats."
    ]


EVALUATE = Section(
    title="Evaluation: time per step and scores",
    about=(
        "What the evaluate stage costs and what it finds, for the registered generator: sample generation "
        "and feature extraction (both in onnxruntime), then every metric of the default list. Scores are "
        "in the feature space of latentforge's own Fashion-MNIST classifier, not Inception's, so they "
        "compare with each other, not with published FIDs. `fid_floor` is the FID of training images "
        "against test images: what a perfect generator would score. Lower is better for `fid` and `kid`; "
        "higher is better for precision, recall, density, coverage, classes hit and class entropy."
    ),
    tables=_evaluate_tables,
    reading=_evaluate_reading,
)


# ---- mode collapse -----------------------------------------------------------------------------
COLLAPSE_COLUMNS = (
    ("fid", "fid", 2),
    ("class_entropy", "class entropy", 3),
    ("classes_hit", "classes hit", 0),
    ("coverage", "coverage", 3),
    ("recall", "recall", 3),
    ("train_seconds", "train s", 0),
)


def _spread(values: list[float], digits: int) -> str:
    return f"{statistics.median(values):,.{digits}f} [{min(values):,.{digits}f}–{max(values):,.{digits}f}]"


def _collapse_variants(record: dict) -> list[str]:
    seen = []
    for row in record["rows"]:
        if row["variant"] not in seen:
            seen.append(row["variant"])
    return seen


def _collapse_tables(record: dict):
    variants = record["parameters"].get("variants", {})
    rows = []
    for variant in _collapse_variants(record):
        chosen = [r for r in record["rows"] if r["variant"] == variant]
        options = variants.get(variant)
        label = f"`{variant}`" + (f" ({', '.join(f'{k}={v}' for k, v in options.items())})" if options else "")
        row = {"variant": label, "runs": len(chosen)}
        for key, _, digits in COLLAPSE_COLUMNS:
            row[key] = _spread([r[key] for r in chosen], digits)
        rows.append(row)
    columns = [Column("variant", "variant", str), Column("runs", "runs")]
    columns += [Column(key, header, str) for key, header, _ in COLLAPSE_COLUMNS]
    raw = [Column("variant", "variant"), Column("seed", "seed")]
    raw += [Column(key, header, fixed(digits)) for key, header, digits in COLLAPSE_COLUMNS]
    return [("Median [min–max] over the seeds", columns, rows), ("Every run", raw, record["rows"])]


def _collapse_reading(record: dict) -> list[str]:
    parameters = record["parameters"]
    epochs, steps, seeds = parameters["epochs"], parameters.get("steps_per_epoch", 0), parameters["seeds"]
    budget = f"{epochs} epoch{'s' if epochs != 1 else ''}" + (f" of {steps} steps" if steps else "")
    lines = [
        f"Every variant trains the DCGAN for {budget} at batch {parameters['batch_size']} with "
        f"seed{'s' if len(seeds) != 1 else ''} {_series([str(s) for s in seeds])}, and the evaluate stage "
        f"scores {parameters['eval_samples']:,} samples of each."
    ]
    by_variant = {v: [r for r in record["rows"] if r["variant"] == v] for v in _collapse_variants(record)}
    if "ns" in by_variant:
        base = statistics.median(r["train_seconds"] for r in by_variant["ns"])
        costs = [
            f"`{variant}` {statistics.median(r['train_seconds'] for r in rows) / base:.1f}×"
            for variant, rows in by_variant.items()
            if variant != "ns"
        ]
        if costs:
            lines.append("Median training time relative to the plain `ns` loss: " + ", ".join(costs) + ".")
    fewest = min(r["classes_hit"] for r in record["rows"])
    lines.append(f"The fewest classes any single run hit: {fewest:.0f}.")
    return lines


MODE_COLLAPSE = Section(
    title="Mode-collapse study",
    about=(
        "The same DCGAN budget with the plain non-saturating loss and with each fix for GAN training "
        "problems, several seeds each, every run through the pipeline's own train, export and evaluate "
        "stages. Class entropy is in nats (the uniform distribution over Fashion-MNIST's classes is the "
        "largest possible); classes hit counts the classes the feature classifier sees among the samples; "
        "FID is in the feature classifier's space. Training seconds are wall time and move with whatever "
        "else ran on the machine: read them as rough ratios."
    ),
    tables=_collapse_tables,
    reading=_collapse_reading,
)


# ---- training speed ----------------------------------------------------------------------------
def _train_speed_tables(record: dict):
    columns = [
        Column("batch", "batch"),
        Column("model", "model", str),
        Column("median_ms", "median ms/step", fixed(1)),
        Column("images_per_s", "images/s", fixed(1)),
        Column("speed_vs_peer", "× peer images/s", fixed(2)),
        Column("mflop_per_image", "MFLOP/image", fixed(1)),
        Column("gflop_per_s", "GFLOP/s", fixed(1)),
        Column("percent_of_peak", "% of matmul peak", fixed(1)),
    ]
    return [("", columns, record["rows"])]


def _train_speed_reading(record: dict) -> list[str]:
    summary = record.get("summary", {})
    lines = []
    if summary.get("matmul_peak_gflops") is not None:
        lines.append(f"The process's float32 matmul peak was {summary['matmul_peak_gflops']:,.1f} GFLOP/s.")
    by_model: dict[str, list[tuple[int, float]]] = {}
    for key, value in summary.items():
        if key.startswith("batch_") and key.endswith("_over_peer"):
            batch, model = key.removeprefix("batch_").removesuffix("_over_peer").split("_", 1)
            by_model.setdefault(model, []).append((int(batch), value))
    for model in (m for m in by_model if "dcgan" in m and not m.startswith("cdcgan")):
        parts = [f"{times(value)} at batch {batch}" for batch, value in sorted(by_model[model])]
        lines.append(f"`{model}` reaches the peer's images/s times " + _series(parts) + ".")
    return lines


TRAIN_SPEED = Section(
    title="Training speed",
    about=(
        "Training images/s of each family's default networks, built and fed as the train stage does, "
        "against a textbook DCGAN that the benchmark builds itself (`bench/peer.py`: Géron's chapter-17 "
        "networks trained as his `train_gan` trains them, at the book's RMSprop). The models take turns in short "
        "blocks of steps, so machine noise hits them alike; every step is timed and the table gives the "
        "median, after a warm-up block that is not counted. MFLOP/image is the float operations of a whole "
        "training step (a GAN's two phases, forward and backward) counted by TensorFlow's graph profiler."
    ),
    tables=_train_speed_tables,
    reading=_train_speed_reading,
)


# ---- several workers -----------------------------------------------------------------------------
def _multi_worker_tables(record: dict):
    workers = record["parameters"]["workers"]
    speed = [
        Column("model", "model", str),
        Column("batch", "global batch"),
        Column("workers_1_images_per_s", "1 worker: images/s", fixed(1)),
        Column(f"workers_{workers}_images_per_s", f"{workers} workers: images/s", fixed(1)),
        Column("ratio", f"{workers} workers / 1", fixed(3)),
        Column("payload_mb", "all-reduce MB/step", fixed(3)),
    ]
    payload = [Column("model", "family", str), Column("payload_mb", "all-reduce payload, MB per step", fixed(3))]
    estimate = [
        Column("model", "model", str),
        Column("machines", "machines"),
        Column("gbit_per_s", "network Gb/s"),
        Column("compute_ms", "compute ms/step", fixed(1)),
        Column("allreduce_ms", "all-reduce ms/step", fixed(2)),
        Column("speedup", "speed-up", fixed(2)),
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
        + _series([f"`{r['model']}` at {r['ratio']:.2f}× the images/s" for r in record["rows"]])
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


MULTI_WORKER = Section(
    title="Several workers",
    about=(
        "Training images/s of one process against several worker processes under "
        "MultiWorkerMirroredStrategy on this machine (`bench/multi_worker.py`: TF_CONFIG on 127.0.0.1, the "
        "cores split between the workers as a local `workers=2` run splits them, the same global batch), "
        "each built and fed as the train stage does; runs alternate and the table gives the median step. "
        "The all-reduce payload is counted from the variables each optimizer update changes while one "
        "training step is traced."
    ),
    tables=_multi_worker_tables,
    reading=_multi_worker_reading,
)


# ---- quality at equal training time ------------------------------------------------------------
def _equal_time_tables(record: dict):
    summary = [
        {**row, "budget": f"{row['budget_T']:g} T", "per_seed": ", ".join(f"{v:.2f}" for v in row["fid_per_seed"])}
        for row in record["tables"]["summary"]
    ]
    columns = [
        Column("budget", "training", str),
        Column("model", "model", str),
        Column("fid_median", "median FID", fixed(2)),
        Column("per_seed", "FID per seed", str),
        Column("fid_vs_reference", "× reference FID", fixed(3)),
        Column("fid_lower_than_reference_pct", "% lower than reference", fixed(1)),
        Column("precision_median", "median precision", fixed(3)),
        Column("recall_median", "median recall", fixed(3)),
        Column("steps_median", "median steps", fixed(0)),
    ]
    units = [
        Column("seed", "seed"),
        Column("model", "model", str),
        Column("batch_size", "batch"),
        Column("images_per_s", "training images/s", fixed(1)),
        Column("sgemm_gflops", "host sgemm GFLOP/s (start, end)", lambda v: ", ".join(f"{x:.0f}" for x in v)),
        Column("date", "finished", str),
    ]
    return [("", columns, summary), ("Every unit, in the order they ran", units, record["tables"]["units"])]


def _equal_time_setup(record: dict) -> str:
    parameters, subject = record["parameters"], record.get("subject", {})
    return (
        f"T = {subject['T_seconds']:,.1f} s: {subject['T_how']}. Seeds "
        f"{', '.join(str(s) for s in parameters['seeds'])}; FID of {parameters['samples']:,} samples in the "
        f"space of feature extractor `{subject.get('extractor', MISSING)}`."
    )


def _equal_time_reading(record: dict) -> list[str]:
    parameters, subject = record["parameters"], record.get("subject", {})
    reference = subject.get("reference", parameters["models"][0])
    lines = [_equal_time_setup(record)]
    for row in record["tables"]["summary"]:
        if row["model"] != reference:
            lines.append(
                f"At {row['budget_T']:g} T, `{row['model']}`'s median FID is "
                f"{row['fid_lower_than_reference_pct']:.1f}% lower than `{reference}`'s."
            )
    return lines


EQUAL_TIME = Section(
    title="Quality at equal training time",
    about=(
        "latentforge's default DCGAN against the textbook peer (`bench/peer.py`: Géron's chapter-17 DCGAN "
        "trained as `train_gan` trains it: networks in training mode, RMSprop, batch 32) when each gets the "
        "same wall-clock seconds of training on this machine: T, the default run's training seconds, and "
        "multiples of it. Clocks count from the start of `fit` (graph tracing included); scoring is off the "
        "clock. Each generator (the weight EMA when the recipe has one, as the export stage ships it) is "
        "scored as the evaluate stage scores it: Fréchet distance to the test split in the registered "
        "feature classifier's space, lower is better; precision and recall with k = 3."
    ),
    tables=_equal_time_tables,
    reading=_equal_time_reading,
)


def _recipe_screen_reading(record: dict) -> list[str]:
    """The equal-time reading, then each candidate against the default (the screen's second model)."""
    lines = [_equal_time_setup(record)]
    rows = [r for r in record["tables"]["summary"] if r["budget_T"] == 1.0]
    default = record["parameters"]["models"][1]
    base = next(r for r in rows if r["model"] == default)
    ranked = sorted(rows, key=lambda r: r["fid_median"])
    lines.append(
        f"By median FID at T the default `{default}` ranks {ranked.index(base) + 1} of {len(rows)}; "
        f"the best is `{ranked[0]['model']}`."
    )
    for row in rows:
        if row is not base:
            change = 100.0 * (row["fid_median"] / base["fid_median"] - 1.0)
            lines.append(
                f"`{row['model']}`: median FID {row['fid_median']:.2f}, {abs(change):.1f}% "
                f"{'higher' if change > 0 else 'lower'} than the default's {base['fid_median']:.2f}."
            )
    return lines


RECIPE_SCREEN = Section(
    title="Choosing the default DCGAN recipe",
    about=(
        "The candidates for the default DCGAN, each trained for T (the default run's training seconds) on "
        "screening seeds that the equal-time comparison above does not report, beside the textbook peer, "
        "measured as above. A default is chosen here and confirmed there on other seeds."
    ),
    tables=_equal_time_tables,
    reading=_recipe_screen_reading,
)


# ---- the families side by side ---------------------------------------------------------------
STUDY_METRICS = (
    ("fid", "FID", 2),
    ("precision", "precision", 3),
    ("recall", "recall", 3),
    ("class_entropy", "class entropy", 3),
)


def _study_cell(digits: int):
    def cell(value: dict) -> str:
        return f"{value['median']:,.{digits}f} [{value['min']:,.{digits}f}–{value['max']:,.{digits}f}]"

    return cell


def _each(digits: int):
    def cell(values) -> str:
        return ", ".join(f"{v:.{digits}f}" for v in values) if values else MISSING

    return cell


def _family_study_tables(record: dict):
    columns = [Column("model", "model", str), Column("minutes", "training min", plain)]
    columns += [Column(key, header, _study_cell(digits)) for key, header, digits in STUDY_METRICS]
    columns += [
        Column("images_per_s", "training images/s", _study_cell(1)),
        Column("onnx_ms_batch1", "ONNX ms, batch 1", fixed(2)),
        Column("onnx_ms_batch64", "ONNX ms, batch 64", fixed(2)),
    ]
    units = [
        Column("model", "model", str),
        Column("seed", "seed"),
        Column("batch_size", "batch"),
        Column("steps", "steps", fixed(0)),
        Column("train_s", "training s", fixed(0)),
        Column("images_per_s", "images/s", fixed(1)),
        Column("cpu_per_s", "CPU s per training s, each stretch", _each(2)),
        Column("load_average", "load average, each checkpoint", _each(1)),
        Column("sgemm_gflops", "host sgemm GFLOP/s, start … end", _each(0)),
        Column("date", "finished", str),
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


FAMILY_STUDY = Section(
    title="DCGAN, progressive growing and StyleGAN at equal training time",
    about=(
        "The three convolutional GAN families given the same wall-clock of training on this machine "
        "(`bench/family_study.py`), each built and fed as the train stage does, several seeds each, and "
        "scored at checkpoints as the evaluate stage scores: FID (lower is better), precision and recall "
        "(k = 3; higher is better), and the entropy of the feature classifier's predicted classes over the "
        "samples (nats; ln 10 = 2.30 when every class is drawn equally often). Training images/s over the "
        "whole run; ONNX latency of the exported generator in onnxruntime (CPU, default session options, "
        "a process without TensorFlow), median of the timed calls."
    ),
    tables=_family_study_tables,
    reading=_family_study_reading,
)


# ---- the first bin/run from a fresh clone ------------------------------------------------------
def minutes(seconds: float) -> str:
    """612.4 -> '10 min 12 s'."""
    whole = round(seconds)
    return f"{whole // 60} min {whole % 60} s"


def _first_run_tables(record: dict):
    columns = [
        Column("round", "round"),
        Column("commit", "commit", str),
        Column("wall_s", "bin/run s", fixed(1)),
        Column("data_s", "data s", fixed(1)),
        Column("train_s", "train s", fixed(1)),
        Column("export_s", "export s", fixed(1)),
        Column("features_s", "features s", fixed(1)),
        Column("evaluate_s", "evaluate s", fixed(1)),
        Column("promote_s", "promote s", fixed(1)),
        Column("outside_stages_s", "outside stages s", fixed(1)),
        Column("fid", "FID", fixed(2)),
    ]
    return [("", columns, record["rows"])]


def _first_run_reading(record: dict) -> list[str]:
    medians = record["summary"]["median_wall_s"]
    lines = [f"Commit `{commit}`: median {minutes(seconds)}." for commit, seconds in medians.items()]
    if record["summary"].get("ratio_last_to_first") is not None:
        first, last = list(medians)[0], list(medians)[-1]
        lines.append(
            f"`{last}` took {record['summary']['ratio_last_to_first']:.2f}× the time of `{first}`, "
            "the runs taking turns on the same machine."
        )
    return lines


FIRST_RUN = Section(
    title="First run from a fresh clone",
    about=(
        "The README's first command, `bin/run`, in a fresh clone with `.venv` already installed and a fresh "
        "`HOME`: it prepares the dataset, trains the feature classifier, then trains, exports, evaluates and "
        "promotes the default DCGAN, as a new user's first run does. The wall time is the whole command; "
        "the stage times are the stages' MLflow runs (the feature classifier's run is nested in the evaluate "
        "stage and counted apart; the data stage's run only records the dataset, so preparing it counts in "
        "outside stages); outside stages is the rest (set-up check, imports, dataset preparation, launching)."
    ),
    tables=_first_run_tables,
    reading=_first_run_reading,
)


def readme_first_run(record: dict) -> str:
    """The README's sentence on how long the first bin/run takes, from first_run.json."""
    newest = list(record["summary"]["median_wall_s"].items())[-1]
    machine = record.get("machine") or {}
    load = (record.get("load_average") or {}).get("start")
    return (
        f"{minutes(newest[1])} from a fresh clone with `.venv` already installed, on "
        f"{machine.get('logical_cores', MISSING)} cores ({record.get('date', MISSING)[:10]}, commit `{newest[0]}`"
        + (f", load average {load[0]:.2f} at the start" if load else "")
        + "; stage by stage in [docs/results.md](docs/results.md#first-run-from-a-fresh-clone))"
    )


SECTIONS = {
    "first_run": FIRST_RUN,
    "train_speed": TRAIN_SPEED,
    "equal_time": EQUAL_TIME,
    "recipe_screen": RECIPE_SCREEN,
    "family_study": FAMILY_STUDY,
    "multi_worker": MULTI_WORKER,
    "inference": INFERENCE,
    "serving": SERVING,
    "evaluate": EVALUATE,
    "mode_collapse": MODE_COLLAPSE,
}


# ---- rendering ---------------------------------------------------------------------------------
def _generic_tables(record: dict):
    keys: list[str] = []
    for row in record["rows"]:
        keys += [k for k in row if k not in keys]
    tables = [("", [Column(k, k) for k in keys], record["rows"])]
    for name, rows in record.get("tables", {}).items():
        names: list[str] = []
        for row in rows:
            names += [k for k in row if k not in names]
        tables.append((name, [Column(k, k) for k in names], rows))
    return tables


def markdown_table(columns: list[Column], rows: list[dict]) -> list[str]:
    lines = ["| " + " | ".join(c.header for c in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [c.format(row[c.key]) if row.get(c.key) is not None else "" for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def provenance(record: dict, source: Path) -> list[str]:
    """Where the numbers come from: command, commit, date, machine, load, raw file."""
    machine = record.get("machine") or {}
    commit = record.get("commit")
    if commit is None:
        state = MISSING
    else:
        state = f"`{commit[:12]}`"
        if record.get("dirty"):
            state += " with uncommitted changes in " + ", ".join(f"`{p}`" for p in record.get("dirty_paths", []))
        elif record.get("dirty") is False:
            state += " (clean tree)"
    cores = machine.get("logical_cores")
    cpu = machine.get("cpu") or f"CPU model {MISSING}"
    hardware = f"{cpu}, {cores if cores is not None else MISSING} logical cores"
    if machine.get("usable_cores") not in (None, cores):
        hardware += f" ({machine['usable_cores']} usable)"
    if machine.get("memory_gib") is not None:
        hardware += f", {machine['memory_gib']} GiB memory"
    software = ", ".join(p for p in (machine.get("os"), machine.get("kernel") and f"Linux {machine['kernel']}") if p)
    versions = ", ".join(f"{name} {version}" for name, version in (machine.get("versions") or {}).items())
    load = record.get("load_average")
    environment = " ".join(f"{k}={v}" for k, v in (record.get("environment") or {}).items())
    command = f"{environment} {record['command']}".strip() if record.get("command") else MISSING
    lines = [
        f"- Command: `{command}`" + (f" (at niceness {machine['niceness']})" if machine.get("niceness") else ""),
        f"- Commit: {state}",
        f"- Date (UTC): {record.get('date') or MISSING}"
        + (f"; took {record['duration_s']:,.0f} s" if record.get("duration_s") is not None else ""),
        f"- Machine: {hardware}",
        f"- Software: {'; '.join(p for p in (software, versions) if p) or MISSING}",
        "- Load average (1, 5, 15 min): "
        + (f"{_triple(load['start'])} at the start, {_triple(load['end'])} at the end" if load else MISSING),
    ]
    if record.get("parameters"):
        lines.append(f"- Parameters: {_inline(record['parameters'])}")
    if record.get("subject"):
        lines.append(f"- Measured: {_inline(record['subject'])}")
    try:
        relative = source.resolve().relative_to(ROOT).as_posix()
        lines.append(f"- Raw data: [`{relative}`](../{relative})")
    except ValueError:
        lines.append(f"- Raw data: `{source.name}`")
    return lines


def _triple(values: list[float]) -> str:
    return "/".join(f"{v:.2f}" for v in values)


def _inline(mapping: dict) -> str:
    return ", ".join(f"{key} {plain(value)}" for key, value in mapping.items())


def section(record: dict, source: Path) -> list[str]:
    spec = SECTIONS.get(record["benchmark"])
    title = spec.title if spec else record["benchmark"]
    lines = [f"## {title}", ""]
    if spec:
        lines += [spec.about, ""]
    for caption, columns, rows in (spec.tables if spec else _generic_tables)(record):
        if caption:
            lines += [f"**{caption}**", ""]
        lines += markdown_table(columns, rows) + [""]
    reading = spec.reading(record) if spec else []
    if reading:
        lines += [" ".join(reading), ""]
    if record.get("note"):
        lines += [f"*Note:* {record['note']}", ""]
    lines += provenance(record, source) + [""]
    return lines


def render(results: Path = RESULTS) -> str:
    """The whole of docs/results.md from the JSON files under `results`."""
    records = []
    for path in sorted(results.glob("*.json")):
        record = json.loads(path.read_text())
        record.setdefault("benchmark", path.stem)
        records.append((path, record))
    rank = {name: i for i, name in enumerate(ORDER)}
    records.sort(key=lambda item: (rank.get(item[1]["benchmark"], len(ORDER)), item[1]["benchmark"]))
    lines = [
        "# Measured results",
        "",
        "<!-- Generated by bench/report.py from bench/results/*.json; do not edit by hand. -->",
        "",
        "Every number below was written by a benchmark under `bench/` into `bench/results/<name>.json`, "
        "together with the commit, date, machine and command it came from, and rendered here by "
        "`bench/report.py`. To refresh a section, rerun its command (each script's `--help` lists its "
        "options), then `.venv/bin/python bench/report.py`. The benchmarks read the registered models of "
        "`$MLFLOW_TRACKING_URI` (default `sqlite:///mlflow.db`), so run the pipeline (`bin/run`) first.",
        "",
        "Timings depend on the machine and on what else ran on it. Each section gives the load average at the "
        "start and end of its run: a load above the number of logical cores means other work competed for the "
        "CPU, so the timings are slower and noisier than on a quiet machine, while ratios between runtimes "
        "or servers measured in the same run hold up better.",
        "",
    ]
    if records:
        lines += ["Sections:", ""]
        for _, record in records:
            spec = SECTIONS.get(record["benchmark"])
            title = spec.title if spec else record["benchmark"]
            lines.append(f"- [{title}](#{_anchor(title)})")
        lines.append("")
    else:
        lines += ["No results yet.", ""]
    for path, record in records:
        lines += section(record, path)
    return "\n".join(lines).rstrip("\n") + "\n"


def render_readme(text: str, results: Path = RESULTS) -> str:
    """The README with the span between README_MARKERS rendered from first_run.json."""
    source = results / "first_run.json"
    start, end = README_MARKERS
    if start not in text or end not in text or not source.is_file():
        return text
    sentence = readme_first_run(json.loads(source.read_text()))
    before, rest = text.split(start, 1)
    return before + start + sentence + end + rest.split(end, 1)[1]


def _anchor(title: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    kept = "".join(ch for ch in title.lower() if ch.isalnum() or ch in " -_")
    return kept.replace(" ", "-")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(RESULTS), help="folder of the benchmarks' JSON files")
    parser.add_argument("--output", default=str(OUTPUT), help="the Markdown file to write or check")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 when the output differs from what the JSON gives"
    )
    parser.add_argument("--readme", default=str(README), help="the README whose marked numbers are rendered too")
    args = parser.parse_args()
    output, readme = Path(args.output), Path(args.readme)
    wanted = {output: render(Path(args.results))}
    if readme.is_file():
        wanted[readme] = render_readme(readme.read_text(), Path(args.results))
    if args.check:
        stale = [path for path, text in wanted.items() if (path.read_text() if path.is_file() else None) != text]
        for path in stale:
            print(
                f"{path} is stale: it differs from what {args.results}/*.json gives; "
                "run .venv/bin/python bench/report.py",
                file=sys.stderr,
            )
        if stale:
            sys.exit(1)
        print(f"{', '.join(str(p) for p in wanted)}: up to date")
        return
    for path, text in wanted.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
