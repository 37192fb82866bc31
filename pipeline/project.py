"""Projection of a real image into a style-based generator's W space (StyleGAN2's projector,
Karras et al. 2020, appendix D): find the w (or, with ``w_plus``, one w per layer) and the noise
maps whose synthesis reproduces the image.

Reads: a registered (or exported) stylegan version: its model card, its ONNX generator (to
estimate the spread of w) and its synthesis SavedModel (ONNX gives no gradients), and the image.

Writes: ``<out>.npz`` (``ws`` (num_ws, w_dim), ``noise`` (noise_size,): the synthesis network's
inputs; ``w`` (w_dim,) when one w serves every layer; the distances), and ``<out>.png``: the
target, the reconstruction and their difference side by side.

The optimisation follows the paper's projector: w starts at the average w and is optimised with
Adam (learning rate 0.1, ramped up over the first 5% of the steps and down, cosine, over the last
25%), with Gaussian noise added to w, of 5% of w's spread falling to 0 over the first 75% of the
steps, so that it explores early; the noise maps start random, are regularised towards
independent per-pixel noise (their autocorrelation one pixel away, at every scale down to 8x8,
weight ``noise_weight``) and renormalised after every step.

The distance is computed on pixels, at full size and average-pooled to a half and a quarter (the
mean of the three mean squared errors, RGB in [-1, 1]): the paper's LPIPS needs VGG weights that
cannot be downloaded here, the feature classifier of a small dataset is a weak perceptual space,
and the target the projection is judged by is itself a pixel distance.
"""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path

import numpy as np

from contract import images as image_tools
from pipeline.errors import UserError

W_SPREAD_SAMPLES = 10_000
INITIAL_NOISE = 0.05  # of w's spread
NOISE_RAMP = 0.75  # of the steps: the w noise falls to 0 by then
LR_RAMP_DOWN, LR_RAMP_UP = 0.25, 0.05


def load_target(
    path: str, side: int, channels: int, value_range: str, background: tuple[int, int, int] = (255, 255, 255)
) -> np.ndarray:
    """The image file as the dataset was prepared (centre crop, Lanczos resize, alpha onto
    ``background``), in the model's value range: (1, side, side, channels) float32.

    Raises:
        UserError: the file is missing or does not decode as an image.
    """
    from pipeline import folders

    file = Path(path)
    if not file.is_file():
        raise UserError(f"image {path} does not exist; pass a PNG, JPEG, WebP or BMP file")
    try:
        pixels = folders.decode(file.read_bytes(), side, channels, background)
    except Exception as error:  # Pillow raises many types for a file it cannot read
        raise UserError(f"{path} does not decode as an image ({type(error).__name__}); pass an image file") from None
    unit = pixels.astype(np.float32)[None] / 255.0
    return unit * 2.0 - 1.0 if value_range == "tanh" else unit


def training_background(card: dict, tfds_dir: str = "") -> tuple[str, str] | None:
    """(background, where) that the model's training images were composited onto, read from the
    prepared image folder its card names (``dataset``, ``dataset_version``); None when that folder
    is not on this machine (or the model trained on a TFDS dataset, which has no alpha)."""
    from pipeline import folders, inputs

    if not card.get("dataset"):
        return None
    try:
        spec = inputs.describe(card["dataset"], tfds_dir, card.get("dataset_version", ""))
        if not spec.location:
            return None
        return str(folders.load(spec.location).meta["recipe"]["background"]), spec.location
    except (UserError, OSError, ValueError, KeyError):
        return None


def w_spread(runtime, samples: int = W_SPREAD_SAMPLES, seed: int = 0) -> float:
    """sqrt(E|w - w_avg|^2): the card's ``w_spread`` (measured at export over 10,000 latents), or
    for a card without it, over ``samples`` latents mapped now (the exported generator's ``ws``)."""
    styles = runtime.card["styles"]
    if "w_spread" in styles:
        return float(styles["w_spread"])
    w_avg = np.asarray(styles["w_avg"], np.float32)
    latents = image_tools.latents(seed, samples, runtime.latent_dim)
    total, chunk = 0.0, 500  # in chunks: the generator makes an image (and takes noise maps) per latent
    for start in range(0, samples, chunk):
        # ws do not depend on the noise maps or images the rest of the feed holds
        feed = runtime.feed(latents[start : start + chunk], values={"psi": 1.0}, seed=seed + start)
        ws = runtime.session.run(["ws"], feed)[0][:, 0]  # (n, w_dim): every layer's w is the same without mixing
        total += float(np.sum(np.square(ws.astype(np.float64) - w_avg)))
    return math.sqrt(total / samples)


def synthesis_network(runtime):
    """The export's synthesis SavedModel, loaded: (ws, noise) -> {"image"}. A registered version's
    is downloaded from the export run its card names into a temporary folder, removed once loaded.

    Raises:
        UserError: the export has no synthesis SavedModel beside its generator or in its run.
    """
    import tensorflow as tf

    from serving.runtime import ModelLoadError, export_file

    name = "synthesis_savedmodel"
    with tempfile.TemporaryDirectory(prefix="latentforge-synthesis-") as tmp:
        try:
            folder = export_file(runtime.source, runtime.onnx_path or Path(name), runtime.card, name, tmp)
        except ModelLoadError as error:
            raise UserError(f"{error}; pass the export folder or re-export the model") from None
        loaded = tf.saved_model.load(str(folder))  # the variables are read into memory here

    def synthesize(ws, noise):
        return loaded.synthesize(ws, noise)  # the closure keeps the loaded object (and its variables) alive

    return synthesize


def _noise_regularisation(maps):
    """Sum over the noise maps (1, s, s) of their squared autocorrelation one pixel away (both
    axes), at every scale down to 8x8 (average-pooled by 2)."""
    import tensorflow as tf

    total = 0.0
    for noise in maps:
        x = noise[..., None]  # (1, s, s, 1)
        while True:
            total += tf.reduce_mean(x * tf.roll(x, 1, axis=2)) ** 2 + tf.reduce_mean(x * tf.roll(x, 1, axis=1)) ** 2
            if x.shape[1] <= 8:
                break
            x = tf.nn.avg_pool2d(x, 2, 2, "VALID")
    return total


def _distance(image, target):
    import tensorflow as tf

    total = 0.0
    for _ in range(3):
        total += tf.reduce_mean(tf.square(image - target))
        image, target = tf.nn.avg_pool2d(image, 2, 2, "VALID"), tf.nn.avg_pool2d(target, 2, 2, "VALID")
    return total / 3.0


def project(
    runtime,
    target: np.ndarray,
    *,
    steps: int = 500,
    w_plus: bool = False,
    noise_weight: float = 1e5,
    seed: int = 0,
    progress=None,
    synthesize=None,
    spread: float | None = None,
) -> dict:
    """Optimise w (or w+) and the noise maps so that the synthesis reproduces ``target``
    (1, h, w, c) in the model's value range.

    Args:
        progress: called with (step, steps, distance) after each step.
        synthesize, spread: ``synthesis_network(runtime)`` and ``w_spread(runtime, seed=seed)``
            when the caller projects several images (each is the same for every image).

    Returns:
        {"ws" (num_ws, w_dim), "noise" (noise_size,), "image" (h, w, c) in the value range,
        "w" (w_dim,) unless w_plus}.
    """
    import tensorflow as tf

    styles = runtime.card["styles"]
    synthesize = synthesize or synthesis_network(runtime)
    spread = w_spread(runtime, seed=seed) if spread is None else spread
    rng = np.random.default_rng(seed)
    w_avg = np.asarray(styles["w_avg"], np.float32)
    count = styles["num_ws"]
    w = tf.Variable(np.tile(w_avg[None, None], (1, count if w_plus else 1, 1)))
    layout = styles["noise_layout"]
    maps = [tf.Variable(rng.standard_normal((1, e["side"], e["side"])).astype(np.float32)) for e in layout]
    step = _optimiser_step(synthesize, w, maps, count, tf.constant(target, tf.float32), noise_weight)
    for index in range(steps):
        rate, scale = schedule(index / steps, spread)
        w_noise = rng.standard_normal(w.shape).astype(np.float32) * scale
        distance = float(step(tf.constant(rate, tf.float32), tf.constant(w_noise)))
        if progress is not None:
            progress(index + 1, steps, distance)
    ws = np.broadcast_to(w.numpy(), (1, count, w.shape[-1]))[0].copy()
    noise = np.concatenate([m.numpy().reshape(-1) for m in maps]).astype(np.float32)
    image = synthesize(tf.constant(ws[None]), tf.constant(noise[None]))["image"].numpy()[0]
    out = {"ws": ws, "noise": noise, "image": image}
    if not w_plus:
        out["w"] = ws[0]
    return out


def schedule(t: float, spread: float) -> tuple[float, float]:
    """(learning rate, std of the noise on w) at the fraction ``t`` of the steps: the projector's
    ramps (up over the first 5%, cosine down over the last 25%; the noise falls to 0 by 75%)."""
    ramp = min(1.0, (1.0 - t) / LR_RAMP_DOWN)
    rate = 0.1 * (0.5 - 0.5 * math.cos(ramp * math.pi)) * min(1.0, t / LR_RAMP_UP)
    return rate, spread * INITIAL_NOISE * max(0.0, 1.0 - t / NOISE_RAMP) ** 2


def _optimiser_step(synthesize, w, maps, count: int, target, noise_weight: float):
    """One Adam step on w and the noise maps (a tf.function of the learning rate and w's noise);
    returns the distance before the step."""
    import tensorflow as tf

    optimizer = tf.keras.optimizers.Adam(0.1, beta_1=0.9, beta_2=0.999)

    @tf.function
    def step(learning_rate, w_noise):
        optimizer.learning_rate.assign(learning_rate)
        with tf.GradientTape() as tape:
            ws = tf.broadcast_to(w + w_noise, (1, count, w.shape[-1]))
            noise = tf.concat([tf.reshape(m, (1, -1)) for m in maps], axis=1)
            distance = _distance(synthesize(ws, noise)["image"], target)
            loss = distance + noise_weight * _noise_regularisation(maps)
        variables = [w, *maps]
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        for m in maps:  # back to zero mean, unit variance
            mean, variance = tf.nn.moments(m, axes=[0, 1, 2])
            m.assign((m - mean) * tf.math.rsqrt(variance + 1e-8))
        return distance

    return step


def pixel_distance(a_unit: np.ndarray, b_unit: np.ndarray) -> float:
    """The L2 distance between two images in [0, 1] (every channel of every pixel): the projection
    target's measure."""
    return float(np.sqrt(np.sum(np.square(np.asarray(a_unit, np.float64) - np.asarray(b_unit, np.float64)))))


def _checked_arguments(out: str, steps: int, background: str):
    """(the .npz path, the background's RGB or None) once the arguments are usable, before the
    model loads and the steps run: nothing is lost to a typo at the end.

    Raises:
        UserError: steps below 1, an unwritable or occupied ``out``, a colour that is none.
    """
    import os

    from pipeline import folders

    if steps < 1:
        raise UserError(f"steps must be at least 1, got {steps}")
    path = Path(out if out.endswith(".npz") else out + ".npz")
    if not path.parent.is_dir() or not os.access(path.parent, os.W_OK):
        raise UserError(f"--out {out}: folder {path.parent} does not exist or is not writable; create it first")
    if path.is_dir() or path.with_suffix(".png").is_dir():
        raise UserError(f"--out {out}: {path} or its .png is a folder; pass a file name")
    try:
        return path, (folders.Recipe(background=background).rgb() if background else None)
    except ValueError as error:
        raise UserError(str(error)) from None


def run(
    model: str,
    image: str,
    out: str,
    *,
    steps: int = 500,
    w_plus: bool = False,
    seed: int = 0,
    background: str = "",
    tfds_dir: str = "",
) -> dict:
    """The ``latentforge project`` command: project ``image`` and write ``out`` (.npz) and its picture.

    ``background``: the colour a transparent image is composited onto; "" = the one the model's
    training folder was prepared with (white when that folder is not on this machine)."""
    from contract.files import write_atomic
    from pipeline import folders
    from pipeline.errors import load_runtime

    path, rgb = _checked_arguments(out, steps, background)
    runtime = load_runtime(model)
    if "styles" not in runtime.card or "synthesis" not in runtime.card["graphs"]:
        raise UserError(f"{model} is a {runtime.card['model']}; projection needs a style-based model (stylegan)")
    if rgb is None:
        found_background = training_background(runtime.card, tfds_dir)
        name = found_background[0] if found_background else "white"
        rgb = folders.Recipe(background=name).rgb()
        where = f"as {found_background[1]} was prepared" if found_background else "the training folder is not here"
        print(f"project: transparent pixels onto {name} ({where}; --background sets another)")
    side, _, channels = runtime.card["output_shape"]
    value_range = runtime.card["value_range"]
    target = load_target(image, side, channels, value_range, rgb)

    live = sys.stdout.isatty()  # a terminal: every step on one rewritten line; a log: every 50th

    def progress(step: int, total: int, distance: float) -> None:
        line = f"project: step {step}/{total}, distance {distance:.5f}"
        if live:
            print("\r" + line, end="\n" if step == total else "", flush=True)
        elif step % 50 == 0 or step == total:
            print(line, flush=True)

    found = project(runtime, target, steps=steps, w_plus=w_plus, seed=seed, progress=progress)
    target_unit = image_tools.to_unit(target[0], value_range)
    image_unit = np.clip(image_tools.to_unit(found["image"], value_range), 0.0, 1.0)
    distance = pixel_distance(target_unit, image_unit)
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / "projection.npz"
        np.savez(staged, **{k: v for k, v in found.items() if k != "image"}, pixel_l2=distance, source=str(image))
        write_atomic(path, staged.read_bytes())
    difference = np.abs(target_unit - image_unit)
    strip = np.stack([target_unit, image_unit, difference])
    write_atomic(
        path.with_suffix(".png"), image_tools.png_bytes(image_tools.grid(image_tools.to_uint8(strip, "unit"), 3))
    )
    print(f"project: pixel L2 distance {distance:.4f}; wrote {path} and {path.with_suffix('.png')}")
    return {"path": str(path), "pixel_l2": distance}
