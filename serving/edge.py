"""Generate a PNG grid on an edge box: this one file, numpy, onnxruntime and Pillow, nothing else.

Copy it next to an exported generator (the export stage's ``generator.onnx`` and
``model_card.json``, or ``generator_int8.onnx``) and run:

    pip install numpy onnxruntime pillow
    python edge.py --model export/ --n 16 --seed 0 --out grid.png [--label 7] [--int8]

The file's sha256 is checked against the model card before it is loaded; the same seed gives
the same bytes as ``latentforge generate`` (same latents: numpy's default_rng(seed)).
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


def generate(session, card: dict, n: int, seed: int, label: int | None = None) -> np.ndarray:
    """(n, h, w, c) uint8 images."""
    z = np.random.default_rng(seed).standard_normal((n, int(card["latent_dim"]))).astype(np.float32)
    feed = {"z": z}
    if card.get("conditional"):
        classes = len(card.get("label_classes") or [])
        feed["label"] = (np.full(n, label) if label is not None else np.arange(n) % classes).astype(np.int32)
    out = session.run(["image"], feed)[0]
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
    parser.add_argument("--int8", action="store_true", help="use generator_int8.onnx")
    parser.add_argument("--out", default="grid.png")
    args = parser.parse_args(argv)
    if not 1 <= args.n <= 4096 or not 0 <= args.seed < 2**32:
        raise SystemExit("edge: --n must be 1-4096 and --seed 0 to 2**32 - 1")
    session, card = load(args.model, args.int8)
    if args.label is not None and not (card.get("conditional") and 0 <= args.label < len(card["label_classes"])):
        raise SystemExit("edge: --label needs a conditional model and an index in its label_classes")
    picture = grid(generate(session, card, args.n, args.seed, args.label))
    image = Image.fromarray(picture[..., 0], mode="L") if picture.shape[-1] == 1 else Image.fromarray(picture)
    image.save(args.out, format="PNG")
    print(f"edge: wrote {args.out} ({args.n} images, seed {args.seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
