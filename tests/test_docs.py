"""The docs' numbers come from the benchmarks' JSON files: docs/results.md must be what
bench/report.py renders from bench/results/*.json, and the README stays a short front door."""

import subprocess
import sys

from tests.conftest import ROOT


def test_results_document_is_rendered_from_the_benchmark_files():
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "report.py"), "--check"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 250
    assert any("docs/results.md" in line for line in lines)
