"""bench/equal_time.py times the default run for T, trains the peer and our DCGAN for the same
wall-clock, in turns, scores both at each budget with a registered extractor (here a quick one, on
a small slice), and resumes from kept units, as docs/results.md renders."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path, tfds_dir, *extra, store: str = "mlflow.db"):
    environment = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / store}"}
    environment.pop("MLFLOW_RUN_ID", None)
    return subprocess.run(
        [sys.executable, str(ROOT / "bench" / "equal_time.py"), *extra]
        + ["--samples", "300", "--features-epochs", "1", "--features-examples", "2000", "--tfds-dir", tfds_dir]
        + ["--state", str(tmp_path / "state"), "--units", str(tmp_path / "units"), "--identity", "test"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
        env=environment,
    )


@pytest.mark.slow
def test_equal_time_measures_T_takes_turns_scores_every_budget_and_resumes(tfds_dir, tmp_path):
    results = tmp_path / "equal_time.json"
    models = ["peer-dcgan+batch_size=8", "dcgan+width=8+batch_size=16"]
    arguments = ["--models", ",".join(models), "--budgets", "0.5,1", "--seeds", "0,1", "--train-examples", "64"]
    done = _run(tmp_path, tfds_dir, *arguments, "--results", str(results))
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads(results.read_text())
    T = record["subject"]["T_seconds"]
    # T: the default config (dcgan, batch 32, 2 epochs) on 64 examples: 2 x 2 steps, timed
    budget = json.loads((tmp_path / "units" / "budget.json").read_text())
    assert budget["seconds"] == T > 0 and budget["steps"] == 4 and "batch 32, 2 epochs of 2 steps" in budget["how"]
    rows = record["rows"]
    # turns: seed 0 runs the reference first, seed 1 ours first; each unit scored at T / 2 and T
    order = [(0, models[0]), (0, models[1]), (1, models[1]), (1, models[0])]
    assert [(r["seed"], r["model"]) for r in rows] == [unit for unit in order for _ in (1, 2)]
    assert [r["budget_T"] for r in rows] == [0.5, 1.0] * 4
    for row in rows:
        assert row["train_s"] >= row["budget_T"] * T and row["steps"] > 0 and row["fid"] > 0
    units = {(u["model"], u["seed"]): u for u in record["tables"]["units"]}
    assert {m: units[m, 0]["batch_size"] for m in models} == {models[0]: 8, models[1]: 16}
    summary = {(s["budget_T"], s["model"]): s for s in record["tables"]["summary"]}
    assert summary[1.0, models[0]]["fid_vs_reference"] == 1.0
    ours = sorted(r["fid"] for r in rows if r["model"] == models[1] and r["budget_T"] == 1.0)
    assert summary[1.0, models[1]]["fid_median"] == pytest.approx(sum(ours) / 2, abs=0.01)
    assert record["subject"]["extractor"].endswith("-e1-n2000")
    assert sorted(p.name for p in (tmp_path / "units").iterdir()) == sorted(
        ["budget.json", "dcgan_width=8_batch_size=16-seed0.json", "dcgan_width=8_batch_size=16-seed1.json"]
        + ["peer-dcgan_batch_size=8-seed0.json", "peer-dcgan_batch_size=8-seed1.json", "extractor"]
    )
    kept = json.loads((tmp_path / "units" / "extractor" / "extractor.json").read_text())
    assert kept["identity"] == record["subject"]["extractor_identity"] and kept["version"].endswith("-e1-n2000")
    # a rerun, on a fresh MLflow store (another session's), takes the extractor kept with the units,
    # T and every unit from the kept work: the same rows, nothing trained again
    folder = tmp_path / "results"
    again = _run(
        tmp_path,
        tfds_dir,
        *arguments,
        "--name",
        "recipe_screen",
        "--results",
        str(folder / "screen.json"),
        store="fresh.db",
    )
    assert again.returncode == 0, again.stderr[-2000:]
    assert "features: training" not in again.stdout
    assert json.loads((folder / "screen.json").read_text())["rows"] == rows
    assert again.stdout.count("kept from") == 4
    # both render into docs/results.md: the comparison and the screen of the default's recipe
    results.rename(folder / "equal_time.json")
    sys.path.insert(0, str(ROOT))
    from bench import report

    text = report.render(folder)
    assert "## Quality at equal training time" in text and "## Choosing the default DCGAN recipe" in text
    assert text.count(f"T = {T:,.1f} s: the default config (dcgan, batch 32") == 2
    lower = summary[1.0, models[1]]["fid_lower_than_reference_pct"]
    assert f"At 1 T, `{models[1]}`'s median FID is {lower:.1f}% lower than `{models[0]}`'s." in text
    assert f"By median FID at T the default `{models[1]}` ranks " in text  # the screen's reading


def test_the_screen_reads_each_candidate_against_the_default():
    sys.path.insert(0, str(ROOT))
    from bench import equal_time

    def row(model, fid):
        return {"budget_T": 1.0, "model": model, "fid_median": fid, "fid_per_seed": [fid]}

    record = {
        "benchmark": "recipe_screen",
        "parameters": {"models": ["peer", "dcgan", "dcgan+b"], "seeds": [10, 11], "samples": 100},
        "subject": {"T_seconds": 10.0, "T_how": "timed", "extractor": "x"},
        "tables": {"summary": [row("peer", 30.0), row("dcgan", 20.0), row("dcgan+b", 18.0)], "units": []},
    }
    lines = equal_time.present(record)["reading"]
    assert lines[1] == "By median FID at T the default `dcgan` ranks 2 of 3; the best is `dcgan+b`."
    assert lines[2:] == [
        "`peer`: median FID 30.00, 50.0% higher than the default's 20.00.",
        "`dcgan+b`: median FID 18.00, 10.0% lower than the default's 20.00.",
    ]


def test_units_that_ran_on_different_hosts_are_shown_with_their_host():
    sys.path.insert(0, str(ROOT))
    from bench import equal_time

    def unit(model, seed, host):
        return {"model": model, "seed": seed, "batch_size": 32, "images_per_s": 90.0, "host_cpu": host}

    summary = [
        {"budget_T": 1.0, "model": m, "fid_median": 10.0, "fid_per_seed": [10.0], "fid_lower_than_reference_pct": 0.0}
        for m in ("peer", "sg")
    ]
    record = {
        "benchmark": "emoji_study",
        "parameters": {"models": ["peer", "sg"], "seeds": [0, 1], "samples": 100},
        "subject": {"T_seconds": 10.0, "T_how": "timed", "extractor": "x"},
        "tables": {"summary": summary, "units": [unit("peer", 0, "A"), unit("sg", 0, "A"), unit("sg", 1, "B")]},
    }
    shown = equal_time.present(record)
    units = shown["tables"][1]
    assert [c["key"] for c in units["columns"]][:3] == ["seed", "model", "host_cpu"]
    assert "ran on 2 kinds of host: A (2 units), B (1 unit)" in shown["reading"][0]

    for one in record["tables"]["units"]:  # one host: no column, no sentence
        one["host_cpu"] = "A"
    shown = equal_time.present(record)
    assert "host_cpu" not in [c["key"] for c in shown["tables"][1]["columns"]]
    assert "kinds of host" not in shown["reading"][0]


def test_a_models_batch_size_is_its_override_else_its_presets_else_the_default_else_its_familys():
    sys.path.insert(0, str(ROOT))
    from bench.equal_time import batch_size_of

    assert batch_size_of("stylegan-fashion", 64) == 32  # the preset's
    assert batch_size_of("stylegan-fashion+batch_size=16", 64) == 16
    assert batch_size_of("dcgan+width=8", 64) == 64 and batch_size_of("progan-fashion", 8) == 64
    assert batch_size_of("peer-dcgan", 64) == 32  # the book's
    assert batch_size_of("dcgan+width=8") == 32 and batch_size_of("vae") == 64  # the families'
    assert batch_size_of("vae-fashion") == 64
