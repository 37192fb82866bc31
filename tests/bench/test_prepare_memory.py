"""bench/prepare_memory.py prepares folders of two sizes with the real data stage, sampling the
memory of the command and its decoding workers, and writes what docs/results.md renders."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import prepare_memory

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow  # two data stages in subprocesses
def test_two_folder_sizes_are_prepared_and_their_peaks_recorded_side_by_side(tmp_path):
    results = tmp_path / "prepare_memory.json"
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "prepare_memory.py"), "--images", "12,24", "--side", "28"]
        + ["--interval", "0.02", "--work", str(tmp_path / "work"), "--results", str(results)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads(results.read_text())
    assert [row["images"] for row in record["rows"]] == [12, 24]
    for row in record["rows"]:
        assert row["peak_command_mib"] > 10 and row["peak_total_mib"] >= row["peak_command_mib"]
        assert row["seconds"] > 0 and row["source_mib"] >= 0
    assert record["summary"]["images_ratio"] == 2.0 and record["summary"]["under_1_gib"] in (True, False)
    prepared = list((tmp_path / "work" / "24" / "tfds" / "image_folders" / "images").glob("*/meta.json"))
    assert len(prepared) == 1 and json.loads(prepared[0].read_text())["splits"]["train"] > 0
    lines = prepare_memory.present(record)
    assert "With 2× the images the peak was" in " ".join(lines["reading"])
