"""Benchmark: sample quality at equal training wall-clock, latentforge's DCGAN against the
textbook peer DCGAN (``bench/peer.py``: Géron's chapter 17 as printed, at the book's batch size).

The budget is T, the default run's training seconds: the default config (``pipeline.config.Config``:
model, batch size, epochs) trained for its epochs over the training split on this host at the
study's start, counted as below. Every (model, seed) unit then trains for the largest of
``--budgets`` (multiples of T, default 1, 2 and 4) and is scored when its training clock passes
each budget: FID, precision and recall (k = 3), and the entropy of the feature classifier's
predicted classes, on ``--samples`` images of the generator that is exported (the EMA one when
the recipe has one), against the test split, with the registered feature extractor, as the
evaluate stage scores. Training clocks count from the start of ``fit`` (graph tracing included);
scoring is off the clock. Models are built and fed as the train stage builds and feeds them
(``bench/train_speed.build``); each at its own batch size (``batch_size_of``). The models of a
seed run back to back, their order reversed every other seed, so a slow spell of this shared
machine falls on both.

The study resumes across sessions as ``bench/family_study.py`` does (it runs its units): each
finished unit is kept under ``--state`` and, with ``--units DIR``, as a JSON file to commit; a
running one at each budget it passes; T is kept too (``DIR/budget.json``), so every unit of a study
gets the same seconds. Kept work is reused only while ``models/``, ``pipeline/`` and ``bench/`` are
committed and unchanged.

    .venv/bin/python bench/equal_time.py [--models peer-dcgan,dcgan] [--seeds 0,1,2] [--budgets 1,2,4]
        [--seconds T] [--units bench/results/equal_time_units]

``--models`` takes what ``bench/train_speed.py`` takes: ``peer-dcgan``, family or preset names,
and ``+field=value`` overrides (``dcgan+ema=0.999``); the first is the reference.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench import record  # noqa: E402  (after the path insert)
from bench.record import MISSING, column, presented  # noqa: E402

PEER = "peer-dcgan"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=f"{PEER},dcgan", help="comma-separated; the first is the reference")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--budgets", default="1,2,4", help="training budgets, in multiples of T")
    parser.add_argument("--seconds", type=float, default=0.0, help="T in seconds; 0 = measure (or take the kept T)")
    parser.add_argument(
        "--batch-size", type=int, default=0, help="of a model that names none; 0 = its preset's or family's default"
    )
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--state", default=str(record.ROOT / ".bench-state" / "equal_time"), help="kept work")
    parser.add_argument("--units", default="", help="also keep finished units and T here, one JSON file each")
    parser.add_argument(
        "--identity",
        default="",
        help="what kept work must match (default: the committed code; see family_study.code_identity)",
    )
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--tfds-dir", default="")
    parser.add_argument("--features-epochs", type=int, default=0, help="extractor recipe (tests): 0 = the default")
    parser.add_argument("--features-examples", type=int, default=0, help="extractor recipe (tests): 0 = all")
    parser.add_argument("--train-examples", type=int, default=0, help="T's run on this many examples (tests): 0 = all")
    parser.add_argument(
        "--name", default="equal_time", help="the benchmark's name in its record (recipe_screen: the default's screen)"
    )
    record.add_arguments(parser, "equal_time")
    args = parser.parse_args()
    names = [n for n in args.models.split(",") if n]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    budgets = sorted({float(b) for b in args.budgets.split(",") if b})
    if len(names) < 2 or not seeds or not budgets or min(budgets) <= 0 or args.seconds < 0:
        parser.error("give at least two models, one seed and positive budgets")

    from bench.family_study import Study, code_identity

    spec, extractor, real = scoring_setup(args)
    identity = kept_identity(args.identity or code_identity(), extractor)
    budget = budget_seconds(args, spec, identity)
    args.seconds = budget["seconds"] * budgets[-1]  # what Study trains for
    checkpoints = [budget["seconds"] * b for b in budgets[:-1]]
    print(
        f"equal-time benchmark: T = {budget['seconds']:.1f} s ({budget['how']}); each unit trains "
        f"{', '.join(f'{b:g}' for b in budgets)} T, FID of {args.samples} samples with extractor "
        f"{extractor.version} ({extractor.identity}); kept work in {args.state}"
        + ("" if identity else " (uncommitted code: nothing is kept)"),
        flush=True,
    )
    study = Study(args, spec, extractor, real, checkpoints, identity)
    units = []
    for index, seed in enumerate(seeds):
        units += [study.run(name, seed) for name in (names if index % 2 == 0 else names[::-1])]
    rows = [{**row, "budget_T": budgets[i]} for unit in units for i, row in enumerate(unit["scores"])]
    summary = summarize(rows, names, budgets)
    print_table(summary)
    record.write(
        args.name,
        args.results,
        parameters={
            "models": names,
            "seeds": seeds,
            "budgets_T": budgets,
            "samples": args.samples,
            "dataset": args.dataset,
        },
        subject={
            "extractor": extractor.version,
            "extractor_identity": extractor.identity,
            "reference": names[0],
            "T_seconds": budget["seconds"],
            "T_how": budget["how"],
        },
        rows=rows,
        summary=targets(summary, names),
        tables={"summary": summary, "units": [{k: v for k, v in u.items() if k != "scores"} for u in units]},
        present=present,
    )


def budget_seconds(args, spec, identity: str) -> dict:
    """T: ``--seconds`` when given; else the kept T of this study (``--units``/``--state``, same
    code); else the default config's training run timed now, and kept."""
    if args.seconds:
        return {"seconds": args.seconds, "how": f"given (--seconds {args.seconds:g}: {args.seconds / 60:g} minutes)"}
    places = [Path(p) / "budget.json" for p in (args.units, args.state) if p]
    for place in places:
        kept = json.loads(place.read_text()) if place.is_file() else {}
        if identity and kept.get("code") == identity:
            return kept
    budget = time_default_run(spec, args.train_examples)
    if identity:
        from bench.family_study import write_json

        for place in places:
            place.parent.mkdir(parents=True, exist_ok=True)
            write_json(place, {**budget, "code": identity})
    return budget


def time_default_run(spec, examples: int = 0) -> dict:
    """The default config's training (``Config()``: its model, batch size and epochs, each epoch
    ``examples // batch`` steps as the train stage takes them) timed with ``train_for``'s clock."""
    from bench.train_speed import build, keras_clear
    from pipeline.config import Config

    config = Config().resolved()
    examples = min(examples or spec.splits["train"], spec.splits["train"])
    steps = config.epochs * (examples // config.batch_size)
    model, data = build(config.model, spec, config.batch_size, seed=config.seed)
    taken, seconds = train_for(model, data, math.inf, max_steps=steps)
    keras_clear()
    how = (
        f"the default config ({config.model}, batch {config.batch_size}, {config.epochs} epochs of "
        f"{examples // config.batch_size} steps) trained on {record.machine()['cpu']} at "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )
    return {"seconds": round(seconds, 1), "steps": taken, "how": how}


def scoring_setup(args):
    """What a benchmark that trains and scores needs, made as the stages make it: thread pools
    sized before any TensorFlow op, the libraries quieted, the bench experiment, the dataset
    (``args.dataset``, ``args.tfds_dir``), the registered feature extractor (``args.features_epochs``,
    ``args.features_examples``: its recipe) and the test split's features. (spec, extractor, real)."""
    from pipeline import quiet, runtime_setup

    runtime_setup.configure_threads()  # as the train stage does, before any TensorFlow op
    quiet.setup()

    from pipeline import inputs, tracking

    tracking.setup("latentforge-bench")
    spec = inputs.describe(args.dataset, args.tfds_dir)
    extractor = study_extractor(spec, args)
    from pipeline.evaluate import reference_split

    return spec, extractor, extractor.real_features(spec, reference_split(spec))


def kept_identity(code: str, extractor) -> str:
    """What kept work must match: the code, and the extractor that scored it ("" keeps nothing)."""
    return f"{code}+features:{extractor.identity}" if code else ""


def study_extractor(spec, args):
    """The feature extractor a study scores with: the one kept beside its units (``--units``, else
    ``--state``) when it is of this dataset version and recipe, so a study resumed in another
    session, after its MLflow store is gone, scores every unit in the same space; else the
    registered one (trained when missing), which is then kept there."""
    from pipeline import features

    epochs = args.features_epochs or features.standard_epochs(spec, args.features_examples)
    version = features.recipe_version(epochs, args.features_examples, features.task_of(spec))
    place = Path(args.units or args.state) / "extractor" if (args.units or args.state) else None
    about = place / "extractor.json" if place else None
    if about is not None and about.is_file() and (place / "extractor.onnx").is_file():
        kept = json.loads(about.read_text())
        if (kept["dataset"], kept["dataset_version"], kept["version"]) == (spec.name, spec.version, version):
            return features.Extractor(str(place / "extractor.onnx"), version, kept["test_accuracy"], kept["identity"])
    extractor = features.get_extractor(spec, epochs=args.features_epochs, examples=args.features_examples)
    if place is not None:
        place.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(extractor.onnx_path, place / "extractor.onnx")
        kept = {"dataset": spec.name, "dataset_version": spec.version, "version": version}
        kept.update(test_accuracy=extractor.test_accuracy, identity=extractor.identity)
        about.write_text(json.dumps(kept, indent=1) + "\n")
    return extractor


def batch_size_of(name: str, default: int = 0) -> int:
    """A model's batch size: its ``+batch_size=N`` override, else its preset's, else ``default``
    when given, else its family's default (the peer: the book's)."""
    from bench import peer
    from models import registry
    from pipeline import presets

    base, *overrides = name.split("+")
    for item in overrides:
        if item.startswith("batch_size="):
            return int(item.split("=", 1)[1])
    if base == PEER:
        return peer.BATCH_SIZE
    if base == "peer-ada":
        from bench import peer_ada

        return peer_ada.BATCH_SIZE
    preset = presets.PRESETS.get(base, {})
    if "batch_size" in preset or default:
        return int(preset.get("batch_size", default))
    return registry.get(preset.get("model", base)).default_batch_size


def train_for(model, data, seconds: float, checkpoints=(), at_checkpoint=None, max_steps=None) -> tuple[int, float]:
    """Train until ``seconds`` of wall-clock have passed (checked after each step), or for
    ``max_steps``; (steps, seconds).

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
            if self.elapsed >= seconds or (max_steps and self.steps >= max_steps):
                self.model.stop_training = True

    budget = Budget()
    model.fit(data, steps_per_epoch=1000, epochs=1_000_000, verbose=0, callbacks=[budget], shuffle=False)
    return budget.steps, budget.elapsed


def sample(generator, samples: int, seed: int, signature=None, value_range: str = "tanh"):
    """``samples`` images in [0, 1] of ``generator`` from seeded latents, as the evaluate stage
    makes them; a generator with more inputs than z (``signature``: StyleGAN's z2, mix, psi,
    noise) gets their defaults, as the evaluate stage feeds them."""
    import numpy as np

    from contract import images
    from contract import signature as signatures

    # from the signature where there is one: a ProGAN's grown generator is a subclassed model
    # without symbolic inputs
    latent_dim = signature.inputs[0].shape[-1] if signature is not None else generator.inputs[0].shape[-1]

    def run(z, seed):
        if signature is None or len(signature.inputs) == 1:
            return np.asarray(generator(z, training=False))
        feed = signatures.default_feed(signature.inputs, len(z), seed)
        feed[signature.inputs[0].name] = z
        return np.asarray(signatures.call(generator, signature, feed))

    return images.sample(run, latent_dim, samples, seed, value_range)


def summarize(rows: list[dict], names: list[str], budgets: list[float]) -> list[dict]:
    """Per budget and model: median FID over seeds, each seed's, the ratio to the reference's
    median at that budget, median precision, recall, steps and training seconds."""
    summary = []
    for budget in budgets:
        at = [r for r in rows if r["budget_T"] == budget]
        reference = statistics.median(r["fid"] for r in at if r["model"] == names[0])
        for name in names:
            mine = sorted((r for r in at if r["model"] == name), key=lambda r: r["seed"])
            fid = statistics.median(r["fid"] for r in mine)
            summary.append(
                {
                    "budget_T": budget,
                    "model": name,
                    "fid_median": round(fid, 2),
                    "fid_per_seed": [r["fid"] for r in mine],
                    "fid_vs_reference": round(fid / reference, 3),
                    "fid_lower_than_reference_pct": round(100 * (1 - fid / reference), 1),
                    "precision_median": round(statistics.median(r["precision"] for r in mine), 3),
                    "recall_median": round(statistics.median(r["recall"] for r in mine), 3),
                    "steps_median": statistics.median(r["steps"] for r in mine),
                    "train_s_median": round(statistics.median(r["train_s"] for r in mine), 1),
                    **(
                        {"augment_p_median": round(statistics.median(r["augment_p"] for r in mine), 3)}
                        if all("augment_p" in r for r in mine)
                        else {}
                    ),
                }
            )
    return summary


def targets(summary: list[dict], names: list[str]) -> dict:
    """Each model's FID lower than the reference's, in percent, at each budget."""
    return {
        f"{row['model']}_fid_lower_than_reference_pct_at_{row['budget_T']:g}T": row["fid_lower_than_reference_pct"]
        for row in summary
        if row["model"] != names[0]
    }


def print_table(summary: list[dict]) -> None:
    print(f"{'budget':>6} {'model':<36}{'median FID':>11}{'x ref':>8}{'lower %':>9}{'steps':>8}  per seed")
    for s in summary:
        print(
            f"{s['budget_T']:>5g}T {s['model']:<36}{s['fid_median']:>11.2f}{s['fid_vs_reference']:>8.3f}"
            f"{s['fid_lower_than_reference_pct']:>9.1f}{s['steps_median']:>8.0f}  {s['fid_per_seed']}"
        )


# ---- how docs/results.md shows the record (bench/report.py renders it) --------------------------
def _equal_time_tables(record: dict):
    summary = [
        {**row, "budget": f"{row['budget_T']:g} T", "per_seed": ", ".join(f"{v:.2f}" for v in row["fid_per_seed"])}
        for row in record["tables"]["summary"]
    ]
    columns = [
        column("budget", "training", "text"),
        column("model", "model", "text"),
        column("fid_median", "median FID", "fixed:2"),
        column("per_seed", "FID per seed", "text"),
        column("fid_vs_reference", "× reference FID", "fixed:3"),
        column("fid_lower_than_reference_pct", "% lower than reference", "fixed:1"),
        column("precision_median", "median precision", "fixed:3"),
        column("recall_median", "median recall", "fixed:3"),
        column("steps_median", "median steps", "fixed:0"),
    ]
    if any("augment_p_median" in row for row in summary):
        columns.append(column("augment_p_median", "median ADA p", "fixed:3"))
    units = [
        column("seed", "seed"),
        column("model", "model", "text"),
        *([column("host_cpu", "host", "text")] if _hosts(record) else []),
        column("batch_size", "batch"),
        column("images_per_s", "training images/s", "fixed:1"),
        column("sgemm_gflops", "host sgemm GFLOP/s (start, end)", "list:0"),
        column("date", "finished", "text"),
    ]
    return [("", columns, summary), ("Every unit, in the order they ran", units, record["tables"]["units"])]


def _hosts(record: dict) -> dict[str, int]:
    """The hosts the units ran on and how many each, when a resumed study ran on more than one."""
    hosts: dict[str, int] = {}
    for unit in record["tables"]["units"]:
        if unit.get("host_cpu"):
            hosts[unit["host_cpu"]] = hosts.get(unit["host_cpu"], 0) + 1
    return hosts if len(hosts) > 1 else {}


def _equal_time_setup(record: dict) -> str:
    parameters, subject = record["parameters"], record.get("subject", {})
    setup = (
        f"T = {subject['T_seconds']:,.1f} s: {subject['T_how']}. Seeds "
        f"{', '.join(str(s) for s in parameters['seeds'])}; FID of {parameters['samples']:,} samples in the "
        f"space of feature extractor `{subject.get('extractor', MISSING)}`."
    )
    hosts = _hosts(record)
    if hosts:
        counts = ", ".join(f"{host} ({n} unit{'s' if n > 1 else ''})" for host, n in hosts.items())
        setup += (
            f" The study was resumed across machines, so its units ran on {len(hosts)} kinds of host: {counts};"
            " the machine named below is the one that finished it."
        )
    return setup


def _equal_time_reading(record: dict) -> list[str]:
    parameters, subject = record["parameters"], record.get("subject", {})
    reference = subject.get("reference", parameters["models"][0])
    lines = [_equal_time_setup(record)]
    summary = record["tables"]["summary"]
    for row in summary:
        if row["model"] != reference:
            lines.append(
                f"At {row['budget_T']:g} T, `{row['model']}`'s median FID is "
                f"{row['fid_lower_than_reference_pct']:.1f}% lower than `{reference}`'s."
            )
    subject, *others = parameters["models"][1:] or [reference]
    for other in others:  # the subject (the second model) against each of the other candidates
        for row in (r for r in summary if r["model"] == subject):
            theirs = next((r for r in summary if r["model"] == other and r["budget_T"] == row["budget_T"]), None)
            if theirs is None:
                continue
            change = 100.0 * (1.0 - row["fid_median"] / theirs["fid_median"])
            lines.append(
                f"At {row['budget_T']:g} T, `{subject}`'s median FID is {abs(change):.1f}% "
                f"{'lower' if change >= 0 else 'higher'} than `{other}`'s."
            )
    return lines


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


def present(record: dict) -> dict:
    """How docs/results.md shows this benchmark's record (``bench/record.py``): the comparison, or
    the screen of the default's recipe (``--name recipe_screen``)."""
    screen = record["benchmark"] == "recipe_screen"
    return presented(_equal_time_tables(record), (_recipe_screen_reading if screen else _equal_time_reading)(record))


if __name__ == "__main__":
    main()
