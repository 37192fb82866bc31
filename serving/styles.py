"""Style controls of a generator whose model card has ``styles`` (StyleGAN's layout): truncation
towards the average w (``psi``), noise on or off, and the paper's style-mixing grid. Keyed on the
card, never on a family's name; the generic runtime (``serving/runtime.py``) knows none of this.
The CLI, the HTTP API and the StyleGAN family's evaluation call these."""

from __future__ import annotations

import numpy as np


def layout(runtime) -> dict | None:
    """The card's style layout (num_ws, groups, noise layout, w_avg), or None."""
    return runtime.card.get("styles")


def required(runtime, control: str) -> dict:
    """The card's style layout; ValueError (starting with ``control``) when it has none."""
    found = layout(runtime)
    if not found:
        raise ValueError(f"{control}: {runtime.card['model']} has no styles to mix; use a stylegan model")
    return found


def controls(runtime, psi: float | None = None, noise: str | None = None, inputs: dict | None = None) -> dict:
    """``values`` for ``runtime.feed`` from the style controls: ``psi`` (truncation towards w_avg; 1 =
    none) and ``noise`` ("random": the card's default draw; "zero": deterministic images),
    merged with the named ``inputs``, which may not set an input a control sets.

    Raises:
        ValueError: a control the model does not have, or a value out of range (the message
            starts with the control's name).
    """
    values, set_by = {}, {}  # input name -> its value; input name -> the control that set it
    model = runtime.card["model"]
    if psi is not None:
        spec = runtime.signature.input("truncation")
        if spec is None or not layout(runtime):
            raise ValueError(
                f"psi: {model} has no styles to truncate towards an average w; "
                "use truncation, which redraws latent entries instead"
            )
        if not 0.0 <= float(psi) <= 1.0:
            raise ValueError(f"psi must be between 0 and 1 (1 = no truncation), got {psi}")
        values[spec.name], set_by[spec.name] = float(psi), "psi"
    if noise is not None:
        if noise not in ("random", "zero"):
            raise ValueError(f"noise must be 'random' or 'zero', got {noise!r}")
        spec = runtime.signature.input("noise")
        if spec is None:
            if noise == "zero":
                raise ValueError(f"noise: {model} has no noise inputs; drop noise")
        elif noise == "zero":
            values[spec.name], set_by[spec.name] = 0.0, "noise"
    for name in sorted(set(set_by) & set(inputs or {})):
        raise ValueError(f"{set_by[name]}: the input {name!r} is also given by name (inputs, --input); set it once")
    return {**values, **(inputs or {})}


def style_layers(runtime, layers) -> list[int]:
    """Style indices from "coarse" | "middle" | "fine" or a list of indices; ValueError
    (starting "layers:") for an unknown group, an index out of range, or no styles."""
    styles = required(runtime, "layers")
    count, groups = int(styles["num_ws"]), styles["groups"]
    if isinstance(layers, str):
        if layers not in groups:
            order = ("coarse", "middle", "fine")
            named = sorted(groups, key=lambda g: order.index(g) if g in order else len(order))
            raise ValueError(f"layers: unknown group '{layers}'; valid: {', '.join(named)} or a list of indices")
        return list(groups[layers])
    indices = list(layers)
    if not indices:
        raise ValueError(f"layers: give at least one style index (0-{count - 1}) or a group name")
    for index in indices:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < count:
            raise ValueError(f"layers: index {index!r} is out of range; this model has {count} styles (0-{count - 1})")
    return sorted(set(int(i) for i in indices))


def mix_feed(runtime, rows, cols, layers, psi: float = 1.0, noise: str = "random") -> dict:
    """The StyleGAN paper's style-mixing grid as one feed of (len(rows) + 1) x (len(cols) + 1)
    images, row by row: a blank corner, the column sources along the top, the row sources
    down the left, and in each cell the row's styles with ``layers`` taken from the column's.
    Every image shares one noise draw (seeded by the first row's seed), or zero noise."""
    mixed = style_layers(runtime, layers)
    values = controls(runtime, psi, None)
    styles = required(runtime, "layers")
    count, size = int(styles["num_ws"]), int(styles["noise_size"])
    latent = {seed: runtime.latents(seed, 1)[0] for seed in (*rows, *cols)}
    first, second, masks = [], [], []
    mask = np.zeros(count, np.float32)
    mask[mixed] = 1.0
    for r in (None, *rows):
        for c in (None, *cols):
            source = r if r is not None else (c if c is not None else rows[0])
            first.append(latent[source])
            second.append(latent[c] if (r is not None and c is not None) else latent[source])
            masks.append(mask if (r is not None and c is not None) else np.zeros(count, np.float32))
    n = len(first)
    noise_values = np.zeros(size, np.float32)
    if noise == "random":
        noise_values = runtime.seeded_noise(rows[0], 1, size)[0]
    elif noise != "zero":
        raise ValueError(f"noise must be 'random' or 'zero', got {noise!r}")
    names = {spec.role: spec.name for spec in reversed(runtime.signature.inputs)}  # the first of each role
    second_latent = [spec.name for spec in runtime.signature.inputs if spec.role == "latent"][1]
    values.update({second_latent: np.stack(second), names["mixing"]: np.stack(masks), names["noise"]: noise_values})
    return runtime.feed(np.stack(first), None, values, rows[0], n)
