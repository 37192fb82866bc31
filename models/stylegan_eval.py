"""The StyleGAN family's evaluation (``Family.evaluate``): a style-based generator measured as the field measures it.

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

Everything runs the exported ONNX graphs (``generator.onnx``, ``synthesis.onnx``) with
onnxruntime, through the evaluation context; the evaluate stage logs the metrics, the table
(``evaluation/truncation_curve.json``) and the pictures (``evaluation/<name>.png``) returned.
"""

from __future__ import annotations

import numpy as np

from contract import images
from models.registry import Evaluation, EvaluationContext
from serving import styles

PSIS = (1.0, 0.9, 0.8, 0.7, 0.5)
GRID_PSIS = (1.0, 0.9, 0.8, 0.7, 0.5, 0.25, 0.0)
PPL_PAIRS = 2000
PPL_EPSILON = 1e-4
NOISE_DRAWS = 32


def evaluate(context: EvaluationContext) -> Evaluation:
    """The truncation curve and path length (metrics), the curve's table and the pictures."""
    runtime, value_range = context.runtime, context.value_range
    results, rows = {}, []
    for psi in PSIS:
        if psi == 1.0:  # the stage's own samples: the same latents at the default psi
            fake = context.sample_features
        else:
            run = _with_controls(runtime, psi)
            generated = images.sample(run, runtime.latent_dim, context.samples, context.seed, value_range)
            fake = context.features(generated)[0]
        row = {"psi": psi, **context.score(fake)}
        rows.append(row)
        results.update({f"{key}_psi_{psi:g}": row[key] for key in ("fid", "precision", "recall")})
    results["ppl_w_classifier"] = path_length_w(runtime, context.features, PPL_PAIRS, context.seed, value_range)
    table = {"rows": rows, "pairs_for_ppl": PPL_PAIRS, "epsilon": PPL_EPSILON}
    pictures = {"truncation_curve": _curve_plot(rows), **style_pictures(runtime, value_range)}
    return Evaluation(results, pictures, {"truncation_curve": table})


def _with_controls(runtime, psi: float):
    values = styles.controls(runtime, psi)

    def run(z, seed: int = 0):
        return runtime.run(z, None, values, seed)

    return run


def path_length_w(runtime, features, pairs: int, seed: int, value_range: str, epsilon: float = PPL_EPSILON) -> float:
    """Perceptual path length in W, with the feature classifier's features (``features``:
    images in [0, 1] -> (features, logits)) as the distance."""
    synthesis, signature = runtime.graph("synthesis")
    ws_name = next(t.name for t in runtime.signature.outputs if t.name != runtime.output)
    noise_name = runtime.signature.input("noise").name
    size = int(styles.required(runtime, "styles")["noise_size"])
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
        f = features(unit)[0].astype(np.float64)
        distances.append(np.sum(np.square(f[:count] - f[count:]), axis=1) / epsilon**2)
    d = np.concatenate(distances)
    low, high = np.percentile(d, [1, 99])
    return float(np.mean(d[(d >= low) & (d <= high)]))


def style_pictures(runtime, value_range: str, seeds=(1, 2, 3, 4, 5, 6)) -> dict[str, np.ndarray]:
    """uint8 pictures: style mixing per group, truncation grid, noise picture."""
    out = {}
    rows, cols = list(seeds[:4]), [s + 100 for s in seeds[:5]]
    for group in styles.required(runtime, "styles")["groups"]:
        generated = np.array(runtime.run_feed(styles.mix_feed(runtime, rows, cols, group, 1.0, "zero")))
        generated[0] = images.blank(value_range)
        out[f"style_mix_{group}"] = images.grid(images.to_uint8(generated, value_range), columns=len(cols) + 1)
    z = images.latents(seeds[0], len(seeds), runtime.latent_dim)
    truncated = [runtime.run(z, None, styles.controls(runtime, psi, "zero")) for psi in GRID_PSIS]
    grid = np.stack(truncated, axis=1).reshape(-1, *truncated[0].shape[1:])  # rows: seeds; columns: psi
    out["truncation"] = images.grid(images.to_uint8(grid, value_range), columns=len(GRID_PSIS))
    noise_name, size = runtime.signature.input("noise").name, int(styles.required(runtime, "styles")["noise_size"])
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


def _curve_plot(rows: list[dict]) -> np.ndarray:
    """The truncation curve as a picture (uint8 (H, W, 3)): FID, precision and recall by psi."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.backends.backend_agg import FigureCanvasAgg

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
    left.legend(lines, [str(line.get_label()) for line in lines], loc="best", fontsize=8)
    figure.tight_layout()
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    picture = np.asarray(canvas.buffer_rgba())[..., :3].copy()
    plt.close(figure)
    return picture
