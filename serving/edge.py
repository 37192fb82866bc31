"""Generate a PNG grid on an edge box: this one file, numpy, onnxruntime and Pillow, nothing else.

Copy it next to an exported generator (the export stage's ``generator.onnx`` and
``model_card.json``, or ``generator_int8.onnx``) and run:

    pip install numpy onnxruntime pillow
    python edge.py --model export/ --n 16 --seed 0 --out grid.png [--label 7] [--input psi=0.7] [--int8]

The file's sha256 is checked against the model card before it is loaded; the same seed gives
the same bytes as ``latentforge generate`` and the browser playground: the seeded draws are the
portable sampler the card names (``lf-hash32-v1``, contract/sampler.py, copied below so that this
file needs nothing else), or numpy's default_rng for a card written before it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import sys
from pathlib import Path

import numpy as np


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load(model: str, int8: bool = False):
    """(onnxruntime session, model card) of an export folder; SystemExit with one line on a problem."""
    import onnxruntime as ort

    folder = Path(model)
    onnx_name = "generator_int8.onnx" if int8 else "generator.onnx"
    onnx_path, card_path = (
        (folder / onnx_name, folder / "model_card.json")
        if folder.is_dir()
        else (folder, folder.parent / "model_card.json")
    )
    if not onnx_path.is_file() or not card_path.is_file():
        raise SystemExit(f"edge: {onnx_path} and {card_path} are needed; pass the export folder")
    card = json.loads(card_path.read_text())
    expected = card.get("files", {}).get(onnx_path.name)
    if expected != sha256_file(onnx_path):
        raise SystemExit(f"edge: {onnx_path.name} does not match the sha256 in the model card; re-download it")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return session, card


def generator_inputs(card: dict) -> list[dict]:
    """The generator's inputs as the card records them (name, dtype, shape, role, default); a
    version 1 card (before the signature was recorded) implies ``z`` [+ ``label``]."""
    graphs = card.get("graphs")
    if graphs:
        return graphs["generator"]["inputs"]
    inputs = [
        {
            "name": "z",
            "role": "latent",
            "dtype": "float32",
            "shape": [None, card["latent_dim"]],
            "default": {"kind": "normal"},
        }
    ]
    if card.get("conditional"):
        classes = len(card.get("label_classes") or [])
        inputs.append(
            {
                "name": "label",
                "role": "label",
                "dtype": "int32",
                "shape": [None],
                "default": {"kind": "classes", "classes": classes},
            }
        )
    return inputs


PORTABLE = "lf-hash32-v1"  # contract/sampler.py's SAMPLER


def _mix(x):  # lowbias32, uint32 arithmetic (contract/sampler.py)
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint32(16))
        x = x * np.uint32(0x7FEB352D)
        x = x ^ (x >> np.uint32(15))
        x = x * np.uint32(0x846CA68B)
        return x ^ (x >> np.uint32(16))


def portable_unit(seed: int, stream: int, count: int) -> np.ndarray:
    """count float64 uniforms in (0, 1) of (seed, stream): contract/sampler.py's, for this one file."""
    with np.errstate(over="ignore"):
        golden = np.uint32(stream % 2**32) + np.uint32(0x9E3779B9)
        key = _mix(_mix(np.uint32(seed % 2**32)) ^ _mix(golden))
        index = np.arange(count, dtype=np.uint64).astype(np.uint32)
        raw = _mix(_mix(index ^ key) + key)
    return (raw.astype(np.float64) + 0.5) / 2.0**32


def draw(default: dict, sampler: str, seed: int, stream: int | None, shape) -> np.ndarray:
    """A random default's draws (contract/sampler.py): the latents a seed stands for (stream None)
    or the input at position ``stream``'s own stream."""
    count = math.prod(shape)
    if sampler == PORTABLE:
        if default["kind"] == "normal":
            unit = portable_unit(seed, 0 if stream is None else stream + 1, 2 * count)
            value = np.sqrt(-2.0 * np.log(unit[0::2])) * np.cos(2.0 * np.pi * unit[1::2])
        else:
            low, high = default.get("low", 0.0), default.get("high", 1.0)
            value = low + (high - low) * portable_unit(seed, 0 if stream is None else stream + 1, count)
        return value.reshape(shape).astype(np.float32)
    rng = np.random.default_rng(seed if stream is None else [seed, stream + 1])
    if default["kind"] == "normal":
        return rng.standard_normal(shape)
    return rng.uniform(default.get("low", 0.0), default.get("high", 1.0), shape)


def default_value(spec: dict, n: int, seed: int, stream: int | None, sampler: str = "") -> np.ndarray:
    """An input's default for n images, as latentforge fills it (contract/signature.py): the
    primary latent (stream None) as the seed's latents, the others from their own streams."""
    shape, default = (n, *spec["shape"][1:]), spec.get("default") or {"kind": "normal"}
    if default["kind"] in ("normal", "uniform"):
        value = draw(default, sampler, seed, stream, shape)
    elif default["kind"] == "classes":
        value = np.broadcast_to(
            (np.arange(n) % max(default["classes"], 1)).reshape((n,) + (1,) * (len(shape) - 1)), shape
        )
    else:
        value = np.full(shape, default.get("value", 0.0))
    return np.ascontiguousarray(value, dtype=spec.get("dtype", "float32"))


def generate(session, card: dict, n: int, seed: int, values: dict | None = None) -> np.ndarray:
    """(n, h, w, c) uint8 images; ``values``: input name -> one number for every image."""
    inputs = generator_inputs(card)
    primary = next((i for i, s in enumerate(inputs) if s["role"] == "latent"), None)
    sampler = card.get("sampler", "")
    feed = {s["name"]: default_value(s, n, seed, None if i == primary else i, sampler) for i, s in enumerate(inputs)}
    for name, value in (values or {}).items():
        spec = next((s for s in inputs if s["name"] == name), None)
        if spec is None:
            raise SystemExit(
                f"edge: unknown input '{name}'; this model's inputs: {', '.join(s['name'] for s in inputs)}"
            )
        classes = (spec.get("default") or {}).get("classes")
        low, high = (0, classes - 1) if classes else spec.get("bounds") or (-np.inf, np.inf)
        integer = spec.get("dtype") == "int32"
        if not low <= value <= high or (integer and value != int(value)):
            kind = "integers" if integer else "values"
            raise SystemExit(f"edge: input '{name}' takes {kind} between {low:g} and {high:g}, got {value:g}")
        feed[name] = np.full((n, *spec["shape"][1:]), value, dtype=spec.get("dtype", "float32"))
    output = card["graphs"]["generator"]["outputs"][0]["name"] if card.get("graphs") else "image"
    out = session.run([output], feed)[0]
    if card["value_range"] == "tanh":
        out = (out + 1.0) * 0.5
    return np.clip(np.rint(out * 255.0), 0, 255).astype(np.uint8)


def grid(pictures: np.ndarray, padding: int = 2) -> np.ndarray:
    n, h, w, c = pictures.shape
    columns = max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / columns)
    out = np.zeros((rows * (h + padding) + padding, columns * (w + padding) + padding, c), np.uint8)
    for i, picture in enumerate(pictures):
        r, col = divmod(i, columns)
        out[
            padding + r * (h + padding) : padding + r * (h + padding) + h,
            padding + col * (w + padding) : padding + col * (w + padding) + w,
        ] = picture
    return out


def main(argv=None) -> int:
    from PIL import Image

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="export folder (generator.onnx + model_card.json)")
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--label", type=int, default=None, help="class index, conditional models only")
    parser.add_argument("--input", action="append", default=[], metavar="NAME=VALUE", help="set an input, e.g. psi=0.7")
    parser.add_argument("--int8", action="store_true", help="use generator_int8.onnx")
    parser.add_argument("--out", default="grid.png")
    args = parser.parse_args(argv)
    if not 1 <= args.n <= 4096 or not 0 <= args.seed < 2**32:
        raise SystemExit("edge: --n must be 1-4096 and --seed 0 to 2**32 - 1")
    session, card = load(args.model, args.int8)
    values = {}
    for item in args.input:
        name, _, value = item.partition("=")
        try:
            values[name.strip()] = float(value)
        except ValueError:
            raise SystemExit(f"edge: --input {item}: give NAME=NUMBER, e.g. psi=0.7") from None
    if args.label is not None:
        label = next((s for s in generator_inputs(card) if (s.get("default") or {}).get("kind") == "classes"), None)
        if label is None or not 0 <= args.label < label["default"]["classes"]:
            raise SystemExit("edge: --label needs a conditional model and an index in its label_classes")
        values[label["name"]] = args.label
    picture = grid(generate(session, card, args.n, args.seed, values))
    image = Image.fromarray(picture[..., 0], mode="L") if picture.shape[-1] == 1 else Image.fromarray(picture)
    image.save(args.out, format="PNG")
    print(f"edge: wrote {args.out} ({args.n} images, seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
