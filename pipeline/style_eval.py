"""The evaluate stage's measurements of a style-based generator (StyleGAN), as the field makes them.

- **Truncation curve**: FID, precision and recall at psi in ``PSIS`` (truncation towards w_avg),
  same latents and noise at every psi; a table (``evaluation/truncation_curve.json``), a plot and
  metrics ``fid_psi_<psi>``, ``precision_psi_<psi>``, ``recall_psi_<psi>``. In the paper's terms:
  as psi falls, samples move to the average (precision up, recall down).
- **Perceptual path length in W** (Karras et al. 2019, section 4.2): for pairs of latents and t ~
  U(0, 1), the squared distance between the images at lerp(w0, w1, t) and at t + epsilon, over
  epsilon squared, the 1st-99th percentiles kept, averaged. The distance is measured in the
  feature classifier's space instead of LPIPS (VGG weights cannot be downloaded here), so the
  metric is named ``ppl_w_classifier``: it ranks models of this project, it does not compare
  with published PPL.
- **Pictures**: style-mixing grids (coarse, middle, fine), a truncation grid (seeds x psi) and a
  noise picture (each image beside the per-pixel standard deviation over noise draws).

Everything runs the exported ONNX graphs (``generator.onnx``, ``synthesis.onnx``) with onnxruntime.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from pipeline import metrics

PSIS = (1.0, 0.9, 0.8, 0.7, 0.5)
GRID_PSIS = (1.0, 0.9, 0.8, 0.7, 0.5, 0.25, 0.0)
PPL_PAIRS = 2000
PPL_EPSILON = 1e-4
NOISE_DRAWS = 32


def evaluate_styles(runtime, extractor, real_features, n: int, seed: int, value_range: str, first=None) -> dict:
    """Metrics of a style-based generator (logged by the caller) and pictures (logged here, into
    the active MLflow run). ``first``: the sample features the caller already has at psi 1 (the
    same latents), reused instead of generated again."""
    import mlflow

    from pipeline.evaluate import generate

    results, rows = {}, []
    for psi in PSIS:
        if psi == 1.0 and first is not None:
            fake = first
        else:
            run = _with_controls(runtime, psi)
            fake = extractor(generate(run, runtime.latent_dim, n, seed, value_range))[0]
        precision, recall = metrics.precision_recall(real_features, fake, k=3)
        row = {"psi": psi, "fid": metrics.fid_between(fake, real_features), "precision": precision, "recall": recall}
        rows.append(row)
        results.update({f"{key}_psi_{psi:g}": row[key] for key in ("fid", "precision", "recall")})
    results["ppl_w_classifier"] = path_length_w(runtime, extractor, PPL_PAIRS, seed, value_range)
    mlflow.log_dict(
        {"rows": rows, "pairs_for_ppl": PPL_PAIRS, "epsilon": PPL_EPSILON}, "evaluation/truncation_curve.json"
    )
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _curve_plot(rows, folder / "truncation_curve.png")
        mlflow.log_artifact(str(folder / "truncation_curve.png"), "evaluation")
    for name, picture in pictures(runtime, value_range).items():
        mlflow.log_image(picture, artifact_file=f"evaluation/{name}.png")
    return results


def _with_controls(runtime, psi: float):
    values = runtime.control_values(psi)

    def run(z, seed: int = 0):
        return runtime.run(z, None, values, seed)

    return run


def path_length_w(runtime, extractor, pairs: int, seed: int, value_range: str, epsilon: float = PPL_EPSILON) -> float:
    """Perceptual path length in W, with the feature classifier's features as the distance."""
    from serving import images

    synthesis, signature = runtime.graph("synthesis")
    ws_name = next(t.name for t in runtime.signature.outputs if t.name != runtime.output)
    noise_name = runtime.signature.input("noise").name
    size = int(runtime.styles["noise_size"])
    rng = np.random.default_rng([seed, 11])
    distances = []
    for start in range(0, pairs, 250):
        count = min(250, pairs - start)
        z = rng.standard_normal((2 * count, runtime.latent_dim)).astype(np.float32)
        noise = rng.standard_normal((count, size)).astype(np.float32)
        t = rng.uniform(0.0, 1.0, (count, 1, 1)).astype(np.float32)
        feed = runtime.feed(z, None, {noise_name: np.concatenate([noise, noise])}, seed)
        ws = runtime.session.run([ws_name], feed)[0]
        w0, w1 = ws[:count], ws[count:]
        ends = np.concatenate([w0 + t * (w1 - w0), w0 + (t + epsilon) * (w1 - w0)]).astype(np.float32)
        out = synthesis.run(
            None, {signature.inputs[0].name: ends, signature.inputs[1].name: np.concatenate([noise, noise])}
        )
        unit = images.to_unit(out[0], value_range)
        f = extractor(unit)[0].astype(np.float64)
        distances.append(np.sum(np.square(f[:count] - f[count:]), axis=1) / epsilon**2)
    d = np.concatenate(distances)
    low, high = np.percentile(d, [1, 99])
    return float(np.mean(d[(d >= low) & (d <= high)]))


def pictures(runtime, value_range: str, seeds=(1, 2, 3, 4, 5, 6)) -> dict[str, np.ndarray]:
    """uint8 pictures: style mixing per group, truncation grid, noise picture."""
    from serving import images

    out = {}
    rows, cols = list(seeds[:4]), [s + 100 for s in seeds[:5]]
    for group in runtime.styles["groups"]:
        generated = np.array(runtime.run_feed(runtime.style_mix_feed(rows, cols, group, 1.0, "zero")))
        generated[0] = images.blank(value_range)
        out[f"style_mix_{group}"] = images.grid(images.to_uint8(generated, value_range), columns=len(cols) + 1)
    z = images.latents(seeds[0], len(seeds), runtime.latent_dim)
    truncated = [runtime.run(z, None, runtime.control_values(psi, "zero")) for psi in GRID_PSIS]
    grid = np.stack(truncated, axis=1).reshape(-1, *truncated[0].shape[1:])  # rows: seeds; columns: psi
    out["truncation"] = images.grid(images.to_uint8(grid, value_range), columns=len(GRID_PSIS))
    noise_name, size = runtime.signature.input("noise").name, int(runtime.styles["noise_size"])
    rng = np.random.default_rng(0)
    draws = np.stack(
        [runtime.run(z, None, {noise_name: rng.standard_normal((len(z), size))}) for _ in range(NOISE_DRAWS)]
    )
    unit = np.clip(images.to_unit(draws, value_range), 0.0, 1.0)
    std = unit.std(axis=0)
    std = std / max(float(std.max()), 1e-8)  # brightest = the most noise-driven pixel of the picture
    tiles = np.concatenate([unit[0], std])  # first row: one draw; second row: per-pixel std over draws
    out["noise"] = images.grid(images.to_uint8(tiles, "unit"), columns=len(z))
    return out


def _curve_plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    psi = [r["psi"] for r in rows]
    figure, left = plt.subplots(figsize=(5, 3.2), dpi=100)
    left.plot(psi, [r["fid"] for r in rows], "o-", color="black", label="FID")
    left.set_xlabel("psi (truncation; 1 = none)")
    left.set_ylabel("FID (lower is better)")
    left.invert_xaxis()
    right = left.twinx()
    right.plot(psi, [r["precision"] for r in rows], "s--", color="tab:blue", label="precision")
    right.plot(psi, [r["recall"] for r in rows], "^--", color="tab:orange", label="recall")
    right.set_ylabel("precision / recall")
    right.set_ylim(0, 1)
    lines = left.get_lines() + right.get_lines()
    left.legend(lines, [line.get_label() for line in lines], loc="best", fontsize=8)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
