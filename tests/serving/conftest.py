"""Export folders of tiny untrained generators (real ONNX files and model cards), and a real
uvicorn server on loopback serving one."""

from __future__ import annotations

import dataclasses
import socket
import threading
import time

import pytest
import requests


def write_export(
    folder,
    kind: str = "dcgan",
    latent_dim: int = 10,
    seed: int = 0,
    shape=(28, 28, 1),
    width=0,
    savedmodels=False,
    card_fields: dict | None = None,
):
    """An export folder as the export stage writes it (every network the family exports, and a
    card with their signatures and ``card_fields``; with ``savedmodels``, their SavedModels too),
    without the parity check and INT8 twin."""
    from contract import card
    from export import files
    from models import registry

    family = registry.get(kind)
    folder.mkdir(parents=True, exist_ok=True)
    spec = registry.model_spec(
        kind, image_shape=shape, latent_dim=latent_dim, learning_rate=1e-3, seed=seed, width=width
    )
    spec = dataclasses.replace(spec, class_names=tuple(CLASS_NAMES))
    model = family.build(spec)
    exports = family.exports(model, spec)
    for export in exports:
        files.write_onnx(export.network, export.signature, folder / f"{export.stem}.onnx")
        if savedmodels:
            files.write_savedmodel(export.network, export.signature, folder / f"{export.stem}_savedmodel")
    card.write_card(
        folder,
        model=kind,
        graphs={e.stem: card.graph_entry(e.stem, e.signature) for e in exports},
        latent_dim=latent_dim,
        value_range=family.value_range,
        output_shape=list(shape),
        label_classes=CLASS_NAMES,
        files=files.sha256_tree(folder),
        **family.card_extras(model, spec),
        **(card_fields or {}),
    )
    return folder


CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def tamper(path) -> None:
    """Flip one byte near the end of a file (an ONNX file stays parseable, its sha256 changes)."""
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RunningServer:
    """uvicorn in a thread on a free loopback port; ``url`` once /readyz answers."""

    def __init__(self, settings, env_token: str = ""):
        import uvicorn

        from serving.server import create_app

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # log_config=None: uvicorn's dictConfig would close every handler of this process, among
        # them absl's, which closes the stream it holds (pytest's capture file, when capsys is on)
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=self.port, log_level="warning", log_config=None
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if requests.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not become ready")

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="session")
def exports(tmp_path_factory):
    return {kind: write_export(tmp_path_factory.mktemp(kind), kind) for kind in ("dcgan", "vae", "cdcgan")}
