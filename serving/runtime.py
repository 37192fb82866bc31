"""Load an exported generator and run it with onnxruntime: numpy only, no TensorFlow.

A model is named by
  - a folder holding ``generator.onnx`` and ``model_card.json`` (the export stage's output),
  - an ``.onnx`` file with ``model_card.json`` beside it, or
  - an MLflow URI, ``models:/<name>@<alias>``, ``models:/<name>/<version>`` or ``runs:/…``
    (resolved through MLflow once, at load time; the card comes from the MLmodel metadata).
Every file is checked against the sha256 the card records before a session is created.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from serving import images
from serving.files import DEFAULT_TRACKING_URI, sha256_file

CARD_FIELDS = ("model", "latent_dim", "value_range", "files")


class ModelLoadError(Exception):
    """The model named by the user cannot be found or cannot be trusted (one-line message)."""


@dataclass
class GeneratorRuntime:
    """An onnxruntime session over a generator, with its model card."""

    session: object
    card: dict
    source: str
    encoder: object = None  # onnxruntime session over the encoder (VAE, AE) when loaded

    @classmethod
    def load(cls, uri: str, threads: int = 0, with_encoder: bool = False, spinning: bool = True) -> GeneratorRuntime:
        """Load and verify a generator (and, with ``with_encoder``, its encoder when the family has one).

        ``threads``: onnxruntime intra-op threads (0 = its default). ``spinning=False`` stops idle
        worker threads from spin-waiting, which a server sharing few cores with its event loop needs.
        """
        onnx_path, card = _resolve(uri)
        missing = [f for f in CARD_FIELDS if not isinstance(card, dict) or f not in card]
        if missing:
            raise ModelLoadError(f"model card of '{uri}' lacks {', '.join(missing)}; re-export the model")
        # generator.onnx, or another generator file of the export its card lists (generator_int8.onnx)
        name = onnx_path.name if onnx_path.name in card.get("files", {}) else "generator.onnx"
        session = _verified_session(uri, onnx_path, card, name, threads, spinning)
        names = ({i.name for i in session.get_inputs()}, {o.name for o in session.get_outputs()})
        if "z" not in names[0] or "image" not in names[1]:
            raise ModelLoadError(f"'{uri}' is not a latentforge generator (inputs {names[0]}, outputs {names[1]})")
        encoder = None
        if with_encoder and "encoder.onnx" in card.get("files", {}):
            encoder_path = _encoder_path(uri, onnx_path, card)
            encoder = _verified_session(uri, encoder_path, card, "encoder.onnx", threads, spinning)
        return cls(session, card, uri, encoder)

    def encode(self, images_unit: np.ndarray) -> np.ndarray:
        """Images in [0, 1] (n, h, w, c) -> latents (the posterior mean for the VAE)."""
        if self.encoder is None:
            raise ValueError(f"{self.card['model']} has no encoder loaded")
        return self.encoder.run(None, {"image": np.ascontiguousarray(images_unit, dtype=np.float32)})[0]

    @property
    def latent_dim(self) -> int:
        return int(self.card["latent_dim"])

    @property
    def conditional(self) -> bool:
        return bool(self.card.get("conditional"))

    @property
    def class_names(self) -> list[str]:
        return list(self.card.get("label_classes") or [])

    def label_index(self, label: str | int) -> int:
        """A class index from an index or a class name (case-insensitive); ValueError otherwise."""
        names = self.class_names
        if isinstance(label, str) and not label.strip().lstrip("-").isdigit():
            lowered = [n.lower() for n in names]
            if label.strip().lower() not in lowered:
                raise ValueError(f"unknown label '{label}'; valid: {', '.join(names)} or 0-{len(names) - 1}")
            return lowered.index(label.strip().lower())
        index = int(label)
        if not 0 <= index < len(names):
            raise ValueError(f"label {index} is out of range; valid: 0-{len(names) - 1} ({', '.join(names)})")
        return index

    def labels(self, label: str | int | None, n: int) -> np.ndarray | None:
        """The label input for n images: None for an unconditional generator, every class in turn
        when ``label`` is None, else ``label`` (a name or index) n times. ValueError when
        ``label`` is unknown or given to an unconditional generator."""
        if not self.conditional:
            if label is not None:
                raise ValueError(f"a label needs a conditional model; this one is a {self.card['model']}")
            return None
        if label is None:
            return self.balanced_labels(n)
        return np.full(n, self.label_index(label), np.int32)

    def balanced_labels(self, n: int) -> np.ndarray:
        """0, 1, ..., C-1, 0, 1, ...: n labels covering every class evenly."""
        return (np.arange(n) % max(len(self.class_names), 1)).astype(np.int32)

    def generate(self, n: int, seed: int, label: str | int | None = None) -> np.ndarray:
        """(n, h, w, c) float32 images in the card's value range, from the latents of ``seed``.

        A conditional generator draws class ``label`` (a name or index), or every class in turn
        when None (see ``labels``; ValueError for a bad label)."""
        return self.run(images.latents(seed, n, self.latent_dim), self.labels(label, n))

    def run(self, z: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        feed = {"z": np.ascontiguousarray(z, dtype=np.float32)}
        if self.conditional:
            if labels is None:
                labels = self.balanced_labels(len(z))
            feed["label"] = np.ascontiguousarray(labels, dtype=np.int32)
        return self.session.run(["image"], feed)[0]

    def generate_uint8(self, n: int, seed: int, label: str | int | None = None) -> np.ndarray:
        return images.to_uint8(self.generate(n, seed, label), self.card["value_range"])


def _verified_session(uri: str, path: Path, card: dict, name: str, threads: int, spinning: bool = True):
    """An onnxruntime session over ``path`` once its sha256 matches the card's entry ``name``."""
    expected = card.get("files", {}).get(name)
    if expected is None:
        raise ModelLoadError(f"model card of '{uri}' records no sha256 for {name}; re-export the model")
    actual = sha256_file(path)
    if actual != expected:
        raise ModelLoadError(
            f"'{uri}': {name} sha256 {actual[:12]}… does not match the model card "
            f"({expected[:12]}…); the file was changed or corrupted, re-export or re-download it"
        )
    import onnxruntime as ort

    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def _encoder_path(uri: str, generator_path: Path, card: dict) -> Path:
    """encoder.onnx beside the generator, or (registered models) from the export run the card names."""
    beside = generator_path.parent / "encoder.onnx"
    if beside.is_file():
        return beside
    import mlflow

    try:
        return Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"runs:/{card.get('export_run_id')}/export/encoder.onnx", dst_path=tempfile.mkdtemp()
            )
        )
    except Exception as error:
        first = str(error).splitlines()[0][:200] if str(error) else type(error).__name__
        raise ModelLoadError(
            f"'{uri}': cannot fetch its encoder from export run {card.get('export_run_id')} ({first})"
        ) from None


def _resolve(uri: str) -> tuple[Path, dict]:
    """(path of the ONNX generator, model card) for any supported URI."""
    if uri.startswith(("models:/", "runs:/")):
        return _resolve_mlflow(uri)
    path = Path(uri)
    if path.is_dir():
        onnx_path = path / "generator.onnx"
        card_path = path / "model_card.json"
    elif path.is_file():
        onnx_path, card_path = path, path.parent / "model_card.json"
    else:
        raise ModelLoadError(
            f"model '{uri}' not found: pass an export folder, a generator .onnx file or models:/<name>@<alias>"
        )
    if not onnx_path.is_file() or not card_path.is_file():
        raise ModelLoadError(f"'{uri}' needs generator.onnx and model_card.json side by side; pass an export folder")
    try:
        card = json.loads(card_path.read_text())
    except (ValueError, UnicodeDecodeError):
        raise ModelLoadError(f"{card_path} is not valid JSON; re-export the model") from None
    return onnx_path, card


def _resolve_mlflow(uri: str) -> tuple[Path, dict]:
    import mlflow
    import yaml
    from mlflow.exceptions import MlflowException

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    tracking_uri = os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
    mlflow.set_tracking_uri(tracking_uri)
    try:
        folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tempfile.mkdtemp()))
    except MlflowException as error:
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelLoadError(
            f"model '{uri}' not found in {tracking_uri} ({first[:200]}); "
            "run the pipeline (mlflow run .) or check the name and alias in mlflow ui"
        ) from None
    mlmodel = folder / "MLmodel"
    if not mlmodel.is_file():
        raise ModelLoadError(f"'{uri}' is not an MLflow model (no MLmodel file); pass a models:/ URI")
    metadata = yaml.safe_load(mlmodel.read_text()).get("metadata") or {}
    card = metadata.get("model_card")
    if card is None:
        raise ModelLoadError(f"'{uri}' has no latentforge model card in its metadata; promote it with latentforge")
    # model.onnx is the registered copy of the exported generator.onnx the card describes.
    return folder / "model.onnx", card
