"""Benchmark: how closely a StyleGAN reproduces held-out real images by projection
(``latentforge project``), against how far each image is from the nearest other real image.

Takes ``--images`` images of the model's dataset's held-out test split (a seeded choice; the
model never trained on them), projects each (``pipeline/project.py``: StyleGAN2's projector,
``--steps`` steps) into W and into W+ (one w per layer; ``--spaces``), and measures in RGB in
[0, 1] (every channel of every pixel):

  - the L2 distance of the image to its projection's image, in each space;
  - the L2 distance of the image to the nearest other image of the whole set (train and test),
    leaving out, for the emoji set, the skin-tone variants of the same emoji (its
    ``emoji-index.json`` names each image's base emoji): what "a different real image" is.

The target (issue 31) is a median projection distance at most half the median nearest-other
distance.

    .venv/bin/python bench/projection.py --model models:/emoji-stylegan@champion [--images 20] [--steps 500] \
        [--spaces w,w+]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench import record  # noqa: E402  (after the path insert)
from bench.record import column, presented  # noqa: E402

SPACES = {"w": "w", "w+": "wplus"}  # a space as --spaces names it -> its key in the record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a stylegan: models:/<name>@<alias> or an export folder")
    parser.add_argument("--images", type=int, default=20, help="held-out images to project")
    parser.add_argument("--steps", type=int, default=500)
    parser.add_argument("--spaces", default="w,w+", help="w (one w for every layer) and/or w+ (one per layer)")
    parser.add_argument("--seed", type=int, default=0, help="which held-out images, and the projector's noise")
    parser.add_argument("--tfds-dir", default="")
    record.add_arguments(parser, "projection")
    args = parser.parse_args()
    spaces = [s.strip() for s in args.spaces.split(",") if s.strip()]
    if not spaces or set(spaces) - set(SPACES):
        raise SystemExit(f"projection: --spaces takes {', '.join(SPACES)}, comma-separated; got '{args.spaces}'")

    import numpy as np

    from pipeline import folders, inputs, project, tracking
    from pipeline.errors import UserError, load_runtime

    tracking.setup("latentforge-bench")
    try:
        runtime = load_runtime(args.model)
    except UserError as error:  # one line, as the CLI says it
        raise SystemExit(f"projection: {error}") from None
    card = runtime.card
    spec = inputs.describe(card["dataset"], args.tfds_dir, card.get("dataset_version", ""))
    if not spec.location:
        raise SystemExit(f"{args.model} trained on the TFDS dataset {spec.name}; this benchmark needs an image folder")
    prepared = folders.load(spec.location)
    everything = np.concatenate([prepared.images("train"), prepared.images("test")]).astype(np.float32) / 255.0
    names = prepared.names("train") + prepared.names("test")
    bases = base_emoji(Path(prepared.meta["source"]), names)
    test_start = spec.splits["train"]
    chosen = sorted(np.random.default_rng(args.seed).permutation(spec.splits["test"])[: args.images] + test_start)
    value_range = card["value_range"]
    rows = []
    started = time.perf_counter()
    shared = {"synthesize": project.synthesis_network(runtime), "spread": project.w_spread(runtime, seed=args.seed)}
    print(f"projection: synthesis network and w spread ready in {time.perf_counter() - started:.0f} s", flush=True)
    for position in chosen:
        target_unit = everything[position]
        target = (target_unit * 2.0 - 1.0 if value_range == "tanh" else target_unit)[None]
        others = [i for i in range(len(everything)) if i != position and bases[i] != bases[position]]
        nearest = min(others, key=lambda i: float(np.sum(np.square(everything[i] - target_unit))))
        row = {
            "image": names[position],
            "nearest_other_l2": round(project.pixel_distance(target_unit, everything[nearest]), 4),
            "nearest_other": names[nearest],
        }
        for space in spaces:
            started = time.perf_counter()
            found = project.project(runtime, target, steps=args.steps, w_plus=space == "w+", seed=args.seed, **shared)
            seconds = time.perf_counter() - started
            image = np.clip((found["image"] + 1.0) / 2.0 if value_range == "tanh" else found["image"], 0.0, 1.0)
            key = SPACES[space]
            row[f"projection_l2_{key}"] = round(project.pixel_distance(target_unit, image), 4)
            row[f"ratio_{key}"] = round(row[f"projection_l2_{key}"] / row["nearest_other_l2"], 3)
            row[f"seconds_{key}"] = round(seconds, 1)
        rows.append(row)
        print(f"projection: {row}", flush=True)
    nearest_other = statistics.median(r["nearest_other_l2"] for r in rows)
    summary = {"median_nearest_other_l2": round(nearest_other, 4)}
    for space in spaces:
        key = SPACES[space]
        projection = statistics.median(r[f"projection_l2_{key}"] for r in rows)
        summary[f"median_projection_l2_{key}"] = round(projection, 4)
        summary[f"ratio_of_medians_{key}"] = round(projection / nearest_other, 3)
        summary[f"at_most_half_{key}"] = projection <= 0.5 * nearest_other
    print(f"projection: {summary}")
    record.write(
        "projection",
        args.results,
        parameters={
            "model": args.model,
            "images": args.images,
            "steps": args.steps,
            "spaces": spaces,
            "seed": args.seed,
        },
        subject={
            "model": card["model"],
            "dataset": spec.name,
            "dataset_version": spec.version,
            "train_run_id": card.get("train_run_id", ""),
        },
        rows=rows,
        summary=summary,
        present=present,
    )


def base_emoji(source: Path, names: list[str]) -> list[str]:
    """Each image's base emoji from the emoji folder's index (its skin-tone variants share it);
    for another folder, each image is its own."""
    index_file = source / "emoji-index.json"
    if not index_file.is_file():
        return list(names)
    images = json.loads(index_file.read_text())["images"]
    return [images.get(name, {}).get("base", name) for name in names]


def present(result: dict) -> dict:
    """How docs/results.md shows this benchmark's record."""
    summary, parameters = result["summary"], result["parameters"]
    spaces = parameters["spaces"]
    columns = [column("image", "held-out image", "text")]
    for space in spaces:
        key = SPACES[space]
        columns += [
            column(f"projection_l2_{key}", f"L2 to its projection in {space.upper()}", "fixed:3"),
            column(f"ratio_{key}", f"ratio, {space.upper()}", "fixed:3"),
        ]
    columns += [
        column("nearest_other_l2", "L2 to the nearest other image", "fixed:3"),
        column("nearest_other", "nearest other image", "text"),
    ]
    reading = [
        f"{len(result['rows'])} held-out images, each projected in {parameters['steps']} steps; the median L2 distance "
        f"(RGB in [0, 1]) of an image to the nearest other real image is {summary['median_nearest_other_l2']:.3f}."
    ]
    for space in spaces:
        key = SPACES[space]
        verdict = "met" if summary[f"at_most_half_{key}"] else "missed"
        median, ratio = summary[f"median_projection_l2_{key}"], summary[f"ratio_of_medians_{key}"]
        reading.append(
            f"In {space.upper()} the median distance to the projection is {median:.3f}, {ratio:.3f} times that "
            f"(the target, at most 0.5, is {verdict})."
        )
    return presented([("", columns, result["rows"])], reading)


if __name__ == "__main__":
    main()
