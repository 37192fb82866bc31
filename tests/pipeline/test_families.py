"""Every model family through the real pipeline (tiny): trains, exports to ONNX with parity at
two batch sizes, evaluates, registers under its own name, and generates with onnxruntime."""

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from models import registry
from pipeline import cli, main
from tests.conftest import tiny_config

pytestmark = pytest.mark.slow  # every stage, per family


# Per family: what makes its tiny run tiny, or reach what the test checks.
TINY_OPTIONS = {
    "stylegan": {"width": 8},
    "progan": {"width": 8, "phase_kimg": 0.032},  # 96 images: fading into 28x28 at export
}
# Option variants run end to end as well: the WGAN critic and the course's fixes together.
VARIANTS = {
    "wgan-gp": {"model": "dcgan", "gan_loss": "wgan-gp", "critic_steps": 2},
    "lsgan-fixes": {
        "model": "dcgan",
        "gan_loss": "lsgan",
        "label_smoothing": 0.1,
        "replay": 64,
        "minibatch_std": 1,
        "ema": 0.99,
    },
}
# cdcgan runs end to end in test_conditional_generator_respects_the_label, trained long enough to
# follow its labels; the same checks follow it there.
CASES = {
    **{name: {"model": name, **TINY_OPTIONS.get(name, {})} for name in registry.names() if name != "cdcgan"},
    **VARIANTS,
}


def _picture(path, rows: int, columns: int, side: int = 28):
    """The PNG at ``path`` as an array, once it is a grid of ``rows`` x ``columns`` images of
    ``side`` pixels with a 2-pixel dark border (contract.images.grid)."""
    from PIL import Image

    with Image.open(path) as image:
        pixels = np.asarray(image)
    assert pixels.shape[:2] == (rows * (side + 2) + 2, columns * (side + 2) + 2), pixels.shape
    assert pixels[:2].max() == 0 and pixels[:, :2].max() == 0  # the border
    assert pixels.std() > 5  # not one flat colour
    return pixels


@pytest.mark.parametrize("overrides", list(CASES.values()), ids=list(CASES))
def test_family_runs_end_to_end(extractor_store, tfds_dir, tmp_path, overrides):
    config = tiny_config(tfds_dir, **overrides)
    _check_family_run(config, main.run_main(config), tfds_dir, tmp_path)


def _check_family_run(config, summary, tfds_dir, tmp_path):
    """A tiny main run of ``config``: promoted, exported with parity, and its champion generates."""
    name = f"fashion_mnist-{config.model}"
    assert summary["registered_model"] == name and summary["promoted"]
    version = MlflowClient().get_model_version_by_alias(name, "champion")
    assert version.tags["latentforge.decision"] == "promoted"
    export_run = MlflowClient().get_run(summary["export_run_id"])
    parity = {k: v for k, v in export_run.data.metrics.items() if "parity_max_abs" in k}
    assert parity and all(v <= 1e-4 for v in parity.values()), parity
    if config.model in ("ae", "vae"):
        assert "encoder_parity_max_abs_onnx" in parity  # the encoder ships too
        artifacts = {a.path for a in MlflowClient().list_artifacts(summary["export_run_id"], "export")}
        assert {"export/encoder.onnx", "export/encoder_savedmodel"} <= artifacts
    if config.model == "vae":  # its primary metric: the test IWAE bound in nats (binarized grey images)
        assert version.tags["latentforge.primary_metric"] == "test_iwae_nll"
        assert 100 < float(version.tags["latentforge.primary_value"]) < 800
    if config.model == "progan":  # the growth is logged per epoch: the last step began at 64 images
        train_metrics = MlflowClient().get_run(summary["train_run_id"]).data.metrics
        assert train_metrics["level"] == 1.0 and train_metrics["alpha"] == 1.0  # stabilizing at 14x14
        assert train_metrics["resolution"] == 14.0
    if config.model == "stylegan":
        assert "synthesis_parity_max_abs_onnx" in parity  # the synthesis network ships too
        _check_stylegan_export(summary["export_run_id"], tmp_path)
        _check_stylegan_evaluation(summary["evaluate_run_id"])
    out, again = tmp_path / "grid.png", tmp_path / "again.png"
    args = ["generate", "--model", f"models:/{name}@champion", "-n", "10"]
    if config.model == "cdcgan":
        args += ["--label", "Sneaker"]
    assert cli.main([*args, "--out", str(out)]) == 0
    _picture(out, rows=3, columns=4)  # 10 images on a square-ish grid
    assert cli.main([*args, "--out", str(again)]) == 0 and again.read_bytes() == out.read_bytes()  # same seed
    strip = tmp_path / "strip.png"
    args = ["latent", "interpolate", "--model", f"models:/{name}@champion", "--method", "lerp", "--out", str(strip)]
    assert cli.main(args) == 0
    _picture(strip, rows=6, columns=10)  # 6 strips of 10 steps
    if config.model == "cdcgan":
        sums = tmp_path / "arithmetic.png"
        args = ["latent", "arithmetic", "--model", f"models:/{name}@champion", "--a", "Sneaker", "--b", "Sandal"]
        args += ["--c", "Bag", "--samples", "200", "--out", str(sums), "--tfds-dir", tfds_dir]
        args += ["--features-epochs", str(config.features_epochs), "--features-examples", str(config.features_examples)]
        assert cli.main(args) == 0
        _picture(sums, rows=4, columns=8)  # A, B, C exemplars and means, then 8 results
        latent_runs = mlflow.search_runs(filter_string="tags.`latentforge.stage` = 'latent'", output_format="list")
        assert len(latent_runs) == 2
        artifacts = {a.path for r in latent_runs for a in MlflowClient().list_artifacts(r.info.run_id, "latent")}
        assert {"latent/arithmetic.png", "latent/arithmetic.json", "latent/interpolate.png"} <= artifacts


def _check_stylegan_export(export_run_id, tmp_path):
    """The controls are graph inputs, the graph draws nothing at random, the card has the layout."""
    import json

    import onnx

    from pipeline import tracking

    folder = tracking.download(export_run_id, "export", str(tmp_path / "export"))
    card = json.loads((folder / "model_card.json").read_text())
    styles = card["styles"]
    assert styles["num_ws"] == 6 and styles["noise_size"] == 2009 and len(styles["w_avg"]) == 128
    assert any(v != 0 for v in styles["w_avg"])  # tracked during training, copied to the EMA generator
    assert [i["name"] for i in card["graphs"]["generator"]["inputs"]] == ["z", "z2", "mix", "psi", "noise"]
    assert [i["role"] for i in card["graphs"]["synthesis"]["inputs"]] == ["latent", "noise"]
    for stem in ("generator", "synthesis"):
        graph = onnx.load(str(folder / f"{stem}.onnx")).graph
        ops = {node.op_type for node in graph.node}
        assert not {op for op in ops if "Random" in op or op == "Multinomial"}, ops
        assert all(i.type.tensor_type.shape.dim[0].dim_param for i in graph.input)  # dynamic batch


def _check_stylegan_evaluation(evaluate_run_id):
    """The truncation curve, the path length and the style pictures are in the evaluate run."""
    run = MlflowClient().get_run(evaluate_run_id)
    found = run.data.metrics
    for psi in ("1", "0.9", "0.8", "0.7", "0.5"):
        assert {f"fid_psi_{psi}", f"precision_psi_{psi}", f"recall_psi_{psi}"} <= set(found)
    assert found["fid_psi_1"] == found["fid"]  # psi 1 is no truncation: the same samples
    assert np.isfinite(found["ppl_w_classifier"]) and found["ppl_w_classifier"] >= 0
    artifacts = {a.path for a in MlflowClient().list_artifacts(evaluate_run_id, "evaluation")}
    expected = {"truncation_curve.png", "truncation_curve.json", "truncation.png", "noise.png", "style_mix_coarse.png"}
    assert {f"evaluation/{name}" for name in expected} <= artifacts


def test_conditional_generator_respects_the_label(extractor_store, tfds_dir, tmp_path):
    """cdcgan end to end: after a short training on a small slice, the feature classifier agrees
    with the label a sample was drawn for far more often than chance (1/10)."""
    config = tiny_config(
        tfds_dir,
        model="cdcgan",
        epochs=3,
        steps_per_epoch=0,
        batch_size=64,
        train_examples=4096,
        eval_samples=1000,
        metrics="fid,classes",
    )
    summary = main.run_main(config)
    metrics = MlflowClient().get_run(summary["evaluate_run_id"]).data.metrics
    assert metrics["label_accuracy"] > 0.3, metrics
    per_class = [metrics[f"label_accuracy_{i}"] for i in range(10)]
    assert np.mean(per_class) == pytest.approx(metrics["label_accuracy"], abs=1e-6)  # balanced labels
    _check_family_run(config, summary, tfds_dir, tmp_path)
