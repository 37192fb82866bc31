"""``latentforge latent``: walks and arithmetic in a generator's latent space, as PNG grids.

  interpolate   rows of latent interpolations (slerp or lerp) between seeded latent pairs
  interpolate --between a.npz,b.npz   the same between two projected real images
                (``latentforge project``; style-based models), in W, through the synthesis graph
  arithmetic    the DCGAN paper's vector arithmetic (Radford et al. 2015, section 6.3):
                mean latent of class A - mean latent of class B + mean latent of class C,
                the groups picked by the dataset's feature classifier among generated samples
                (for a conditional generator, its label picks them), each mean over the
                ``exemplars`` most confident samples; the result is decoded with small
                perturbations, as the paper did, and classified; with ``.npz`` projections
                as A, B and C: ws(A) - ws(B) + ws(C) on real images, decoded with C's noise.

Works on every exported generator (export folder, .onnx, or models:/ URI), through onnxruntime.
Each call writes the PNG to ``--out`` and logs it, with its numbers, to an MLflow run
(stage tag ``latent``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from contract import images
from contract.files import write_atomic
from pipeline import tracking
from pipeline.errors import UserError, load_runtime
from serving.runtime import class_index


@dataclass
class LatentResult:
    run_id: str
    picture: np.ndarray
    summary: dict


def _labels(runtime, label, n: int):
    try:
        return runtime.labels(label, n)
    except ValueError as error:
        raise UserError(str(error)) from None


def interpolate(model: str, *, seed: int = 0, rows: int = 6, steps: int = 10, method: str = "slerp", label=None):
    """``rows`` interpolations of ``steps`` images between latent pairs drawn from ``seed``."""
    if method not in ("slerp", "lerp"):
        raise UserError(f"unknown interpolation '{method}'; use slerp or lerp")
    if not (1 <= rows <= 64 and 2 <= steps <= 64):
        raise UserError(f"rows must be 1-64 and steps 2-64, got rows={rows} steps={steps}")
    runtime = load_runtime(model)
    ends = runtime.latents(seed, 2 * rows)
    z = np.concatenate([images.interpolate(ends[2 * r], ends[2 * r + 1], steps, method) for r in range(rows)])
    labels = _labels(runtime, label, rows)
    out = runtime.run(z, None if labels is None else np.repeat(labels, steps))
    picture = images.grid(images.to_uint8(out, runtime.card["value_range"]), columns=steps)
    summary = {"method": method, "rows": rows, "steps": steps, "seed": seed, "model": model}
    return runtime, picture, summary


def load_projection(path: str) -> dict:
    """A ``latentforge project`` result: {"ws" (num_ws, w_dim), "noise" (noise_size,)} (UserError if unreadable)."""
    try:
        with np.load(path, allow_pickle=False) as saved:
            return {"ws": saved["ws"].astype(np.float32), "noise": saved["noise"].astype(np.float32)}
    except Exception:  # missing, empty, a .npy, a broken zip, pickled, wrong keys: numpy raises many types
        raise UserError(f"{path} is not a projection (latentforge project --out writes one); pass its .npz") from None


def _synthesis(runtime):
    """The runtime's synthesis graph (``runtime.synthesize``); UserError for a model without one."""
    graphs = runtime.card["graphs"]
    if "synthesis" not in graphs:
        raise UserError(
            f"projected latents need a style-based model: {runtime.card['model']} exports no synthesis graph; "
            f"its graphs: {', '.join(graphs)}"
        )
    from serving.runtime import ModelLoadError

    def synthesize(ws, noise):
        try:
            return runtime.synthesize(ws, noise)
        except ModelLoadError as error:  # the synthesis graph is missing or fails its checksum
            raise UserError(str(error)) from None

    return synthesize


def _checked(runtime, found: dict, path: str) -> dict:
    styles = runtime.card.get("styles") or {}
    if found["ws"].shape != (styles.get("num_ws"), styles.get("w_dim")) or found["noise"].size != styles.get(
        "noise_size"
    ):
        raise UserError(f"{path} was projected into another model (ws {found['ws'].shape}); project it into this one")
    return found


def interpolate_projections(model: str, between: str, *, steps: int = 10):
    """An interpolation strip, linear in W and in the noise, between two projected real images."""
    paths = [p.strip() for p in between.split(",") if p.strip()]
    if len(paths) != 2 or not 2 <= steps <= 64:
        raise UserError("--between takes two projections, a.npz,b.npz, and steps 2-64")
    runtime = load_runtime(model)
    synthesize = _synthesis(runtime)
    a, b = (_checked(runtime, load_projection(p), p) for p in paths)
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32)
    ws = a["ws"][None] + t[:, None, None] * (b["ws"] - a["ws"])[None]
    noise = a["noise"][None] + t[:, None] * (b["noise"] - a["noise"])[None]
    out = synthesize(ws.astype(np.float32), noise.astype(np.float32))
    picture = images.grid(images.to_uint8(out, runtime.card["value_range"]), columns=steps)
    return runtime, picture, {"between": paths, "steps": steps, "model": model, "space": "W"}


def arithmetic_projections(model: str, a: str, b: str, c: str):
    """ws(A) - ws(B) + ws(C) of three projected real images, decoded with C's noise; the picture
    shows A, B, C and the result."""
    runtime = load_runtime(model)
    synthesize = _synthesis(runtime)
    found = [_checked(runtime, load_projection(p), p) for p in (a, b, c)]
    ws = np.stack([f["ws"] for f in found] + [found[0]["ws"] - found[1]["ws"] + found[2]["ws"]])
    noise = np.stack([f["noise"] for f in found] + [found[2]["noise"]])
    out = synthesize(ws.astype(np.float32), noise.astype(np.float32))
    picture = images.grid(images.to_uint8(out, runtime.card["value_range"]), columns=4)
    return runtime, picture, {"a": a, "b": b, "c": c, "model": model, "space": "W"}


def _classifier(runtime, tfds_dir: str, epochs: int, examples: int):
    from pipeline import features, inputs

    spec = inputs.describe(runtime.card["dataset"], tfds_dir, runtime.card.get("dataset_version", ""))
    if not spec.class_names:
        raise UserError(
            f"dataset '{spec.name}' has no labels, so there are no classes to add and subtract; "
            "pass projections (.npz) as --a, --b and --c"
        )
    return spec, features.get_extractor(spec, 0, epochs, examples)


def arithmetic(
    model: str,
    a: str,
    b: str,
    c: str,
    *,
    seed: int = 0,
    samples: int = 2000,
    exemplars: int = 3,
    variations: int = 8,
    noise: float = 0.25,
    tfds_dir: str = "",
    features_epochs: int = 4,
    features_examples: int = 0,
):
    """Decode mean(A) - mean(B) + mean(C) (and ``variations`` - 1 perturbations of it).

    Picture rows: A's exemplars and their mean's image, the same for B and C, then the results.
    """
    if not (exemplars >= 1 and samples >= 10 * exemplars and 1 <= variations <= 32):
        raise UserError("need exemplars >= 1, samples >= 10 * exemplars and variations 1-32")
    runtime = load_runtime(model)
    spec, extractor = _classifier(runtime, tfds_dir, features_epochs, features_examples)
    names = list(spec.class_names)
    try:
        classes = [class_index(names, x) for x in (a, b, c)]
    except ValueError as error:
        raise UserError(str(error)) from None
    z = runtime.latents(seed, samples)
    value_range = runtime.card["value_range"]
    rows, means, report = [], [], {}
    for name, cls in zip("abc", classes):
        row, mean, found = _exemplar_mean(runtime, extractor, z, cls, names, exemplars)
        rows.append(row)
        means.append(mean)
        report.update({f"{name}_{key}": value for key, value in found.items()})
    result = means[0] - means[1] + means[2]
    rng = np.random.default_rng(seed + 1)
    perturbed = np.concatenate([result[None], result + rng.uniform(-noise, noise, (variations - 1, result.size))])
    result_labels = np.full(variations, classes[2], np.int32) if runtime.conditional else None
    decoded = images.to_unit(runtime.run(perturbed.astype(np.float32), result_labels), value_range)
    _, logits = extractor(decoded)
    predicted = np.argmax(logits, 1)
    report["result_classes"] = {names[i]: int(np.sum(predicted == i)) for i in np.unique(predicted)}
    width = max(exemplars + 1, variations)
    tiles = []
    for row in [*rows, decoded]:
        tiles.extend(row)
        tiles.extend(np.zeros_like(row[:1]).repeat(width - len(row), axis=0))
    picture = images.grid(images.to_uint8(np.stack(tiles), "unit"), columns=width)
    summary = {"model": model, "seed": seed, "samples": samples, "exemplars": exemplars, "noise": noise, **report}
    return runtime, picture, summary


def _exemplar_mean(runtime, extractor, z, cls: int, names, exemplars: int):
    """(the ``exemplars`` samples of ``z`` the classifier finds most like class ``cls`` and their
    mean latent's image, that mean latent, {class, exemplar_probability})."""
    value_range = runtime.card["value_range"]
    labels = np.full(len(z), cls, np.int32) if runtime.conditional else None
    generated = images.to_unit(runtime.run(z, labels), value_range)
    _, logits = extractor(generated)
    probability = _softmax(logits)[:, cls]
    if not runtime.conditional and int(np.sum(np.argmax(logits, 1) == cls)) < exemplars:
        raise UserError(
            f"fewer than {exemplars} of {len(z)} samples look like '{names[cls]}'; "
            "raise --samples or pick another class"
        )
    chosen = np.argsort(-probability)[:exemplars]
    mean = z[chosen].mean(axis=0)
    mean_image = images.to_unit(runtime.run(mean[None], None if labels is None else labels[:1]), value_range)
    found = {"class": names[cls], "exemplar_probability": float(probability[chosen].mean())}
    return np.concatenate([generated[chosen], mean_image]), mean, found


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _picture(kind: str, kwargs: dict):
    """(runtime, picture, summary) of the walk ``kind`` asks for, on seeds or on projections."""
    if kind == "interpolate" and kwargs.get("between"):
        return interpolate_projections(kwargs["model"], kwargs["between"], steps=kwargs.get("steps", 10))
    kwargs.pop("between", None)
    if kind == "arithmetic" and all(str(kwargs.get(k, "")).endswith(".npz") for k in "abc"):
        return arithmetic_projections(kwargs["model"], kwargs["a"], kwargs["b"], kwargs["c"])
    return (interpolate if kind == "interpolate" else arithmetic)(**kwargs)


def run_latent(kind: str, out: str, **kwargs) -> LatentResult:
    """Run ``interpolate`` or ``arithmetic``, write ``out`` and log both to an MLflow run."""
    import mlflow

    out_path = Path(out)
    if out_path.is_dir() or not out_path.parent.is_dir():
        raise UserError(f"--out {out} must be a file in an existing folder, e.g. latent.png")
    runtime, picture, summary = _picture(kind, kwargs)
    png = images.png_bytes(picture)
    write_atomic(out_path, png)
    params = {"kind": kind, "model": kwargs["model"], "generator_model": runtime.card["model"]}
    with tracking.stage_run("latent", params) as run:
        mlflow.log_image(picture, artifact_file=f"latent/{kind}.png")
        mlflow.log_dict(summary, f"latent/{kind}.json")
    print(f"latent: wrote {out_path} ({kind}); " + json.dumps(summary))
    return LatentResult(run.info.run_id, picture, summary)
