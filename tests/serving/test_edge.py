"""The edge example: one file, run alone where TensorFlow, Keras, MLflow and latentforge
itself cannot be imported; its PNG matches `latentforge generate` byte for byte."""

import shutil
import subprocess
import sys

from tests.conftest import ROOT
from tests.serving.conftest import tamper

WRAPPER = """
import importlib.abc, runpy, sys
BLOCKED = ("tensorflow", "keras", "tf2onnx", "mlflow", "pipeline", "models", "export", "serving")
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked on this edge box")
sys.meta_path.insert(0, Block())
sys.argv = ["edge.py", *sys.argv[1:]]
runpy.run_path("edge.py", run_name="__main__")
"""


def edge_box(tmp_path, export):
    """A folder as an edge box holds it: edge.py, the export, and the wrapper that blocks imports."""
    box = tmp_path / "box"
    box.mkdir()
    shutil.copy(ROOT / "serving" / "edge.py", box / "edge.py")
    shutil.copytree(export, box / "export")
    (box / "wrapper.py").write_text(WRAPPER)
    return box


def test_edge_example_runs_with_numpy_onnxruntime_pillow_only(exports, tmp_path):
    box = edge_box(tmp_path, exports["dcgan"])
    run = subprocess.run(
        [sys.executable, "-I", "wrapper.py", "--model", "export", "--n", "9", "--seed", "4", "--out", "edge.png"],
        cwd=box,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    reference = tmp_path / "reference.png"
    from pipeline import cli

    args = ["generate", "--model", str(exports["dcgan"]), "-n", "9", "--seed", "4", "--out", str(reference)]
    assert cli.main(args) == 0
    assert (box / "edge.png").read_bytes() == reference.read_bytes()
    tamper(box / "export" / "generator.onnx")
    refused = subprocess.run(
        [sys.executable, "-I", "wrapper.py", "--model", "export", "--out", "x.png"],
        cwd=box,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode != 0 and "does not match the sha256" in refused.stderr
    assert not (box / "x.png").exists()
