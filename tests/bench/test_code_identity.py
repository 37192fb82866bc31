"""Kept study work is tied to the code that trains and scores it (bench/family_study.code_identity):
a change to models/, pipeline/, contract/, export/ or bench/ code gives a new identity, and uncommitted code gives none;
what the studies themselves write under bench/results/, committed or not, changes nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

from bench.family_study import code_identity


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=root, check=True, capture_output=True)


def _commit(root: Path, message: str) -> None:
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", message)


def test_results_do_not_change_the_identity_and_code_does(tmp_path):
    root = tmp_path / "repo"
    code = ("models/gan.py", "pipeline/train.py", "bench/equal_time.py", "contract/images.py", "export/onnx.py")
    for path in (*code, "bench/results/old.json"):
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_text(f"# {path}\n")
    _git(root, "init", "-q")
    _commit(root, "code")
    first = code_identity(root)
    assert first and len(first.split("-")) == 5

    # a finished unit written under bench/results/, then committed: the same identity throughout
    (root / "bench/results/units").mkdir()
    (root / "bench/results/units/stylegan-seed0.json").write_text("{}\n")
    (root / "bench/results/old.json").write_text("{}\n")
    assert code_identity(root) == first
    _commit(root, "a unit")
    assert code_identity(root) == first

    # bench code, uncommitted: nothing is kept; committed: a new identity
    (root / "bench/equal_time.py").write_text("# changed\n")
    assert code_identity(root) == ""
    _commit(root, "bench code")
    second = code_identity(root)
    assert second and second != first

    # models/ and pipeline/ count as much as bench/, an untracked file included
    (root / "pipeline/new.py").write_text("# new\n")
    assert code_identity(root) == ""
    _commit(root, "pipeline code")
    third = code_identity(root)
    assert third not in ("", second)

    # so do contract/ and export/, which sample and export what is scored
    (root / "export/onnx.py").write_text("# changed\n")
    _commit(root, "export code")
    assert code_identity(root) not in ("", third)


def test_outside_a_git_checkout_nothing_is_kept(tmp_path):
    assert code_identity(tmp_path) == ""
