"""Export folders of tiny untrained generators (real ONNX files and model cards), and a real
uvicorn server on loopback serving one."""

from __future__ import annotations

import socket
import threading
import time

import pytest
import requests


def write_export(folder, kind: str = "dcgan", latent_dim: int = 10, seed: int = 0):
    """An export folder as the export stage writes it (generator, encoder for vae/ae, card)."""
    from export import card, files
    from models import registry

    family = registry.FAMILIES[kind]
    folder.mkdir(parents=True, exist_ok=True)
    model = registry.build(kind, image_shape=(28, 28, 1), latent_dim=latent_dim, learning_rate=1e-3, seed=seed)
    inputs = {"z": (latent_dim,), **({"label": ()} if family.conditional else {})}
    endpoint = files.Endpoint("generate", inputs, ("image",), {"label": 10} if family.conditional else {})
    files.write_onnx(model.generator, endpoint, folder / "generator.onnx")
    if family.encoder:
        outputs = ("z_mean", "z_log_var") if kind == "vae" else ("z",)
        files.write_onnx(
            model.encoder, files.Endpoint("encode", {"image": (28, 28, 1)}, outputs), folder / "encoder.onnx"
        )
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    card.write_card(
        folder,
        model=kind,
        latent_dim=latent_dim,
        value_range=family.value_range,
        output_shape=[28, 28, 1],
        conditional=family.conditional,
        label_classes=names,
        files=files.sha256_tree(folder),
    )
    return folder


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
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.port, log_level="warning")
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
