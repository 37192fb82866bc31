"""Where a benchmark's numbers go: ``bench/results/<name>.json``, with how and where they were measured.

Every benchmark ends with :func:`write`. The file holds the benchmark's name, the git commit of
the tree it ran from (and whether that tree had uncommitted changes outside ``bench/results/``
and ``docs/``), the UTC date, the machine (CPU model, logical cores, memory, OS, the versions of
Python and of the libraries it imported), the load average when it started and ended, the
command line and the environment variables that change what it measures, its parameters, the
rows of its table and any summary numbers, and how docs/results.md shows them (``present``: its
tables with their column specs, and the sentences that read them, from the benchmark's own
``present(record)``). ``bench/report.py`` renders every such file into ``docs/results.md``; no
number in the docs is typed by hand.

    .venv/bin/python bench/record.py --present bench/results/*.json   # re-present kept records

A benchmark adds the common ``--results`` flag with :func:`add_arguments` (default
``bench/results/<name>.json``; an empty value writes nothing, e.g. for a smoke run).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

SCHEMA = 1
ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
OWN_OUTPUTS = ("bench/results/", "docs/")  # a benchmark's own outputs do not make the tree dirty
ENVIRONMENT = (
    "MLFLOW_TRACKING_URI",
    "OMP_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "CUDA_VISIBLE_DEVICES",
)
LIBRARIES = ("numpy", "onnxruntime", "tensorflow", "keras", "mlflow", "onnx", "fastapi", "uvicorn")

_STARTED = time.time()
_LOAD_AT_START = os.getloadavg()
# as the user set it: benchmarks import this module first, before they size thread pools themselves
_ENVIRONMENT_AT_START = {key: os.environ[key] for key in ENVIRONMENT if os.environ.get(key)}


def add_arguments(parser: argparse.ArgumentParser, name: str) -> None:
    """Add ``--results PATH`` (default ``bench/results/<name>.json``; empty = write nothing)."""
    parser.add_argument(
        "--results",
        default=str(RESULTS / f"{name}.json"),
        help="JSON file for the results and their provenance, rendered by bench/report.py; empty = none",
    )


def write(
    name: str,
    path: str | Path | None,
    *,
    parameters: dict,
    rows: list[dict],
    subject: dict | None = None,
    summary: dict | None = None,
    tables: dict[str, list[dict]] | None = None,
    note: str = "",
    versions: dict[str, str] | None = None,
    present: Callable[[dict], dict] | None = None,
) -> Path | None:
    """Write one benchmark's results with their provenance; returns the path (None when path is empty).

    Args:
        name: the benchmark's name (``inference``, ``serving``, ...): the section in docs/results.md.
        path: the JSON file (usually ``args.results``); empty or None writes nothing.
        parameters: the benchmark's own settings (repeats, batch sizes, ...), as parsed.
        rows: the rows of its main table, one dict per row, plain JSON values.
        subject: what was measured (model URI, kind, runs), when it is not in the parameters.
        summary: derived numbers worth a sentence (ratios, totals).
        tables: further tables, by name, each a list of row dicts.
        note: a sentence about the conditions, when they need one.
        versions: versions of libraries that only the benchmark's own subprocesses imported
            (``{"tensorflow": "2.21.0"}``), added to the machine's.
        present: the benchmark's ``present(record)``: how the docs show the record (``presented``).

    Returns:
        The path written, or None.
    """
    if not path:
        return None
    record = {
        "benchmark": name,
        "schema": SCHEMA,
        **source(),
        "date": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "duration_s": round(time.time() - _STARTED, 1),
        "machine": machine(versions),
        "load_average": {"start": _rounded(_LOAD_AT_START), "end": _rounded(os.getloadavg())},
        "command": command(),
        "environment": _ENVIRONMENT_AT_START,
        "parameters": parameters,
        "subject": subject or {},
        "rows": rows,
        "summary": summary or {},
        "tables": tables or {},
        "note": note,
    }
    if present is not None:
        record["present"] = present(record)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    print(f"results: {path}", file=sys.stderr)
    return path


def source() -> dict:
    """``commit`` (full sha, None outside git), ``dirty`` and the changed tracked paths, if any."""

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout

    try:
        commit = git("rev-parse", "HEAD").strip()
        changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()]
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "dirty": None, "dirty_paths": []}
    changed = sorted(p for p in changed if not p.startswith(OWN_OUTPUTS))
    return {"commit": commit, "dirty": bool(changed), "dirty_paths": changed}


def machine(extra_versions: dict[str, str] | None = None) -> dict:
    """CPU model, logical cores, memory, OS and the versions of Python and the imported libraries
    (this process's, and ``extra_versions`` from its subprocesses)."""
    cpu = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = round(int(line.split()[1]) / 2**20, 1)
                break
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    versions = {"python": platform.python_version()}
    for library in LIBRARIES:
        module = sys.modules.get(library)
        if module is not None and getattr(module, "__version__", None):
            versions[library] = str(module.__version__)
        elif library in (extra_versions or {}):
            versions[library] = extra_versions[library]
    return {
        "cpu": cpu or platform.processor() or None,
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "memory_gib": memory_gib,
        "os": _os_name(),
        "kernel": platform.release(),
        "versions": versions,
        "niceness": os.nice(0),
    }


def command() -> str:
    """The command line as run, with the interpreter and script relative to the repository when inside it."""

    def relative(word: str) -> str:
        try:
            return str(Path(word).resolve().relative_to(ROOT))
        except ValueError:
            return word

    interpreter = sys.executable
    venv = Path(sys.prefix)
    if (venv / "pyvenv.cfg").is_file():  # name the venv's python as a user would type it
        interpreter = str(Path(venv.name) / "bin" / Path(sys.executable).name)
    return shlex.join([interpreter, relative(sys.argv[0]), *sys.argv[1:]])


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.platform()


def _rounded(values) -> list[float]:
    return [round(v, 2) for v in values]


# ---- how a benchmark's record is shown -------------------------------------------------------------
MISSING = "not recorded"
FORMATS = ("text", "plain", "fixed:N", "range:N", "list:N")  # bench/report.py's cell formats


def column(key: str, title: str, fmt: str = "plain") -> dict:
    """A table column: the rows' ``key``, its ``title``, its cell format (one of ``FORMATS``)."""
    return {"key": key, "title": title, "format": fmt}


def table(caption: str, columns: list[dict], rows: list[dict]) -> dict:
    """A table of the docs: a caption ("" for none), its columns, its rows (plain JSON values)."""
    return {"caption": caption, "columns": columns, "rows": rows}


def presented(tables: list, reading: list[str], **extra) -> dict:
    """``present``'s value: the tables ((caption, columns, rows) tuples or ``table`` dicts), the
    sentences that read them, and ``extra`` (e.g. ``readme``: sentences for README.md's markers)."""
    shown = [t if isinstance(t, dict) else table(*t) for t in tables]
    return {"tables": shown, "reading": list(reading), **extra}


def plain(value: object) -> str:
    """Any JSON value as prose or a cell: floats with 4 significant digits, strings as code."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, str):
        return f"`{value}`"
    return f"`{json.dumps(value, sort_keys=True)}`"


def times(value: float | None) -> str:
    """A ratio for prose: whole numbers from 10 up, one decimal below."""
    if value is None:
        return "-"
    return f"{value:,.0f}×" if value >= 10 else f"{value:.1f}×"


def series(parts: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def minutes(seconds: float) -> str:
    """612.4 -> '10 min 12 s'."""
    whole = round(seconds)
    return f"{whole // 60} min {whole % 60} s"


PRESENTERS = {  # benchmark -> the bench module that presents it, when not its own
    "recipe_screen": "equal_time",
    "emoji_screen": "equal_time",
    "emoji_study": "equal_time",
    "emoji_ada_subset": "equal_time",
    "train_speed_emoji": "train_speed",
}


def represent(path: Path) -> None:
    """Recompute a kept record's ``present`` with its benchmark's current ``present(record)``
    (the measured values are not touched)."""
    import importlib

    data = json.loads(Path(path).read_text())
    name = data.get("benchmark", Path(path).stem)
    module = importlib.import_module(f"bench.{PRESENTERS.get(name, name)}")
    data["present"] = module.present(data)
    Path(path).write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    parser = argparse.ArgumentParser(description="re-present kept benchmark records")
    parser.add_argument("--present", nargs="+", required=True, metavar="JSON", help="records to re-present")
    for kept in parser.parse_args().present:
        represent(Path(kept))
        print(f"presented {kept}")
