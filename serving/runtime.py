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
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from contract import card as model_card
from contract import images, sampler, signature
from contract.files import first_line, sha256_file
from contract.signature import Signature
from serving.store import tracking_server_problem, use_tracking_store

CARD_FIELDS = ("model", "value_range", "files", "graphs")


class ModelLoadError(Exception):
    """The model named by the user cannot be found or cannot be trusted (one-line message)."""


@dataclass
class GeneratorRuntime:
    """An onnxruntime session over a generator, with its model card.

    The generator's inputs come from the card's signature (``card["graphs"]["generator"]``):
    ``feed`` fills every input a caller does not give from its default (seeded latents, every
    class in turn, constants...), so callers name roles (a seed, a label, extra values), not
    tensors."""

    session: Any  # onnxruntime.InferenceSession
    card: dict
    source: str
    encoder: Any = None  # onnxruntime session over the encoder (VAE, AE) when loaded
    onnx_path: Path | None = None  # the generator's file (other graphs of the export lie beside it)

    def __post_init__(self):
        self._synthesis: Any = None  # the synthesis graph's session, once loaded
        self.signature = Signature.from_dict(self.card["graphs"]["generator"])
        self.output = self.signature.output_names[0]
        self.latent_input = self.signature.input("latent")
        self.label_input = self.signature.input("label")
        # the seeded draws this export's seeds stand for (contract.sampler): the portable sampler,
        # or LEGACY (numpy's) for a card written before it
        self.sampler = sampler.of_card(self.card)
        encoder = self.card["graphs"].get("encoder")
        self.encoder_signature = Signature.from_dict(encoder) if encoder is not None else None

    @classmethod
    def load(cls, uri: str, threads: int = 0, with_encoder: bool = False, spinning: bool = True) -> GeneratorRuntime:
        """Load and verify a generator (and, with ``with_encoder``, its encoder when the family has one).

        ``threads``: onnxruntime intra-op threads (0 = its default). ``spinning=False`` stops idle
        worker threads from spin-waiting, which a server sharing few cores with its event loop needs.
        """
        onnx_path, card = _resolve(uri)
        try:
            card = model_card.checked(card)
        except ValueError as error:
            raise ModelLoadError(f"'{uri}': {error}") from None
        missing = [f for f in CARD_FIELDS if f not in card]
        if missing:
            raise ModelLoadError(f"model card of '{uri}' lacks {', '.join(missing)}; re-export the model")
        # generator.onnx, or another generator file of the export its card lists (generator_int8.onnx)
        name = onnx_path.name if onnx_path.name in card.get("files", {}) else card["graphs"]["generator"]["file"]
        session = _verified_session(uri, onnx_path, card, name, threads, spinning)
        expected = Signature.from_dict(card["graphs"]["generator"])
        found = ({i.name for i in session.get_inputs()}, {o.name for o in session.get_outputs()})
        if found[0] != {t.name for t in expected.inputs} or not set(expected.output_names) <= found[1]:
            raise ModelLoadError(
                f"'{uri}' does not match its model card (graph inputs {sorted(found[0])}, outputs {sorted(found[1])}; "
                f"card inputs {[t.name for t in expected.inputs]}); re-export the model"
            )
        encoder = None
        graph = card["graphs"].get("encoder")
        if with_encoder and graph is not None:
            encoder_path = export_file(uri, onnx_path, card, graph["file"])
            encoder = _verified_session(uri, encoder_path, card, graph["file"], threads, spinning)
        return cls(session, card, uri, encoder, onnx_path)

    def graph(self, stem: str, threads: int = 0):
        """(onnxruntime session, signature) of another graph of the export (``synthesis``, ...),
        verified against the card's sha256; ValueError when the card has no such graph."""
        entry = self.card["graphs"].get(stem)
        if entry is None:
            raise ValueError(
                f"{self.card['model']} exports no {stem} graph; its graphs: {', '.join(self.card['graphs'])}"
            )
        if self.onnx_path is None:
            raise ValueError(f"{self.source}: no generator file to find the {stem} graph beside")
        path = export_file(self.source, self.onnx_path, self.card, entry["file"])
        return _verified_session(self.source, path, self.card, entry["file"], threads), Signature.from_dict(entry)

    def synthesize(self, ws: np.ndarray, noise: np.ndarray) -> np.ndarray:
        """Images from styles ``ws`` (n, num_ws, w_dim) and packed ``noise`` (n, noise_size) through
        the export's synthesis graph (style-based models; loaded on first use, then kept)."""
        if self._synthesis is None:
            self._synthesis = self.graph("synthesis")[0]
        feed = {"ws": np.ascontiguousarray(ws, np.float32), "noise": np.ascontiguousarray(noise, np.float32)}
        return self._synthesis.run(["image"], feed)[0]

    def encode(self, images_unit: np.ndarray) -> np.ndarray:
        """Images in [0, 1] (n, h, w, c) -> latents (the first output: the posterior mean for the VAE)."""
        if self.encoder is None:
            raise ValueError(f"{self.card['model']} has no encoder loaded")
        signature = self.encoder_signature
        feed = {signature.inputs[0].name: np.ascontiguousarray(images_unit, dtype=np.float32)}
        return self.encoder.run([signature.output_names[0]], feed)[0]

    def latents(self, seed: int, n: int) -> np.ndarray:
        """The latents ``seed`` stands for with this export's sampler: (n, latent_dim) float32."""
        return images.latents(seed, n, self.latent_dim, self.sampler)

    def seeded_noise(self, seed: int, n: int, size: int) -> np.ndarray:
        """(n, size) random noise of ``seed``: the draws of the generator's noise input (so the
        synthesis graph, fed a seed's styles and this, gives that seed's generated image)."""
        position = next((i for i, spec in enumerate(self.signature.inputs) if spec.role == "noise"), None)
        if self.sampler == sampler.LEGACY:
            position = None  # before the portable sampler, noise drew from default_rng(seed)
        return sampler.draw_normal(self.sampler, seed, position, (n, size))

    @property
    def latent_dim(self) -> int:
        return int(self.latent_input.shape[0]) if self.latent_input is not None else 0

    @property
    def conditional(self) -> bool:
        return self.label_input is not None

    @property
    def class_names(self) -> list[str]:
        return list(self.card.get("label_classes") or [])

    def label_index(self, label: str | int) -> int:
        """A class index from an index or a class name (case-insensitive); ValueError otherwise."""
        return class_index(self.class_names, label)

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

    def balanced_labels(self, n: int) -> np.ndarray | None:
        """0, 1, ..., C-1, 0, 1, ...: n labels covering every class evenly."""
        return signature.default_value(self.label_input, n) if self.conditional else None  # "classes": no seed

    def feed(self, latents=None, labels=None, values: dict | None = None, seed: int = 0, n: int | None = None) -> dict:
        """Every generator input for a batch: ``latents`` for the latent input, ``labels`` for the
        label input, ``values`` (input name -> one value for all, or one per image) for any
        input, and the card's default for the rest (seeded by ``seed``).

        Raises:
            ValueError: an unknown input name, or a value of the wrong shape or out of bounds.
        """
        n = len(latents) if latents is not None else (len(labels) if labels is not None else n)
        if n is None:
            raise ValueError("feed needs latents, labels or n")
        feed = signature.default_feed(self.signature.inputs, n, seed, self.sampler)
        if latents is not None and self.latent_input is not None:  # (n, 0) latents of a latent-free model
            feed[self.latent_input.name] = np.ascontiguousarray(latents, dtype=np.float32)
        if labels is not None and self.label_input is not None:
            feed[self.label_input.name] = np.ascontiguousarray(labels, dtype=np.int32)
        specs = {t.name: t for t in self.signature.inputs}
        for name, value in (values or {}).items():
            if name not in specs:
                raise ValueError(f"unknown input '{name}'; this model's inputs: {', '.join(specs)}")
            feed[name] = signature.coerce(specs[name], value, n)
        return feed

    def generate(self, n: int, seed: int, label: str | int | None = None, values: dict | None = None) -> np.ndarray:
        """(n, h, w, c) float32 images in the card's value range, from the latents of ``seed``.

        A conditional generator draws class ``label`` (a name or index), or every class in turn
        when None (see ``labels``); ``values`` sets other inputs (``feed``). ValueError for a
        bad label or value."""
        latents = self.latents(seed, n) if self.latent_input is not None else None
        return self.run_feed(self.feed(latents, self.labels(label, n), values, seed, n))

    def run(self, z: np.ndarray, labels: np.ndarray | None = None, values: dict | None = None, seed: int = 0):
        """Images for latents ``z`` (and ``labels``; every class in turn when None), the other
        inputs from ``values`` or their defaults."""
        return self.run_feed(self.feed(z, labels, values, seed))

    def run_feed(self, feed: dict) -> np.ndarray:
        return self.session.run([self.output], feed)[0]

    def generate_uint8(self, n: int, seed: int, label: str | int | None = None, values=None) -> np.ndarray:
        return images.to_uint8(self.generate(n, seed, label, values), self.card["value_range"])


def class_index(names: list[str], label: str | int) -> int:
    """A class index from an index or a class name (case-insensitive); ValueError otherwise."""
    if isinstance(label, str) and not label.strip().lstrip("-").isdigit():
        lowered = [n.lower() for n in names]
        if label.strip().lower() not in lowered:
            raise ValueError(f"unknown label '{label}'; valid: {', '.join(names)} or 0-{len(names) - 1}")
        return lowered.index(label.strip().lower())
    index = int(label)
    if not 0 <= index < len(names):
        raise ValueError(f"label {index} is out of range; valid: 0-{len(names) - 1} ({', '.join(names)})")
    return index


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
    options.log_severity_level = 3  # errors only (0 verbose ... 4 fatal)
    if threads:
        options.intra_op_num_threads = threads
    if not spinning:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


def export_file(uri: str, generator_path: Path, card: dict, name: str, dst: str = "") -> Path:
    """File or folder ``name`` of the export beside the generator, or (registered models) from the
    export run the card names, downloaded into ``dst`` (a new temporary folder when empty).

    Raises:
        ModelLoadError: it is neither beside the generator nor in the export run.
    """
    beside = generator_path.parent / name
    if beside.exists():
        return beside
    import mlflow

    try:
        return Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=f"runs:/{card.get('export_run_id')}/export/{name}", dst_path=dst or tempfile.mkdtemp()
            )
        )
    except Exception as error:
        raise ModelLoadError(
            f"'{uri}': cannot fetch {name} from export run {card.get('export_run_id')} ({first_line(error)})"
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

    tracking_uri = use_tracking_store()
    if problem := tracking_server_problem(tracking_uri):
        raise ModelLoadError(problem)
    try:
        folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tempfile.mkdtemp()))
    except MlflowException as error:
        raise ModelLoadError(
            f"model '{uri}' not found in {tracking_uri} ({first_line(error)}); "
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
