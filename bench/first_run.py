"""Benchmark: the README's first command, ``bin/run``, from a fresh clone, timed end to end and per stage.

Each run clones this repository (a commit of it) into a temporary folder, links the installed
``.venv`` into the clone (the README's time is "with .venv already installed"), and runs
``bin/run`` there with a fresh ``HOME``: nothing prepared, no tracking store, no registered
feature extractor, so the dataset is prepared, the classifier trained, the DCGAN trained,
exported, evaluated and promoted, as a new user's first run does. The wall time is the whole
command, set-up check and ``mlflow run`` included; the stage times come from the clone's MLflow
store (each stage's run start and end), and "outside stages" is the rest (imports, launching, and preparing
the dataset, which the data stage does before it opens its run).

With several commits (``--commits OLD,HEAD``) the runs take turns (old, new, old, new, ...), so
that a busy machine slows them alike and their ratio holds. ``--params preset=stylegan-emoji``
passes ``-P`` values to ``bin/run`` (a preset end to end from a fresh clone: its dataset fetched,
its extractor trained), recorded under ``--name``; each row lists the pictures the stages logged.

    .venv/bin/python bench/first_run.py [--commits HEAD] [--rounds 1]
    .venv/bin/python bench/first_run.py --params preset=stylegan-emoji --name first_run_stylegan_emoji \
        --work DIR        # DIR/fresh/mlflow.db then holds its champion, DIR/home its prepared data
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import record  # noqa: E402  (after the path insert)
from bench.record import MISSING, column, minutes, presented  # noqa: E402

ROOT = record.ROOT
STAGES = ("data", "train", "export", "features", "evaluate", "promote")
# Variables that would point the clone at this checkout's store, data or caches.
CLEARED = ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "TFDS_DATA_DIR", "LATENTFORGE_CACHE", "PYTHONPATH")


class BenchError(Exception):
    """A run could not be made or measured; the message says why."""


def resolve(commit: str) -> str:
    result = subprocess.run(["git", "rev-parse", "--verify", f"{commit}^{{commit}}"], cwd=ROOT, capture_output=True)
    if result.returncode:
        raise BenchError(f"'{commit}' is not a commit of {ROOT}; pass a commit id, tag or branch")
    sha = result.stdout.decode().strip()
    pyproject = subprocess.run(["git", "show", f"{sha}:pyproject.toml"], cwd=ROOT, capture_output=True).stdout
    if pyproject != (ROOT / "pyproject.toml").read_bytes():
        # bin/setup would reinstall the shared .venv for it.
        raise BenchError(f"commit {sha[:7]} has another pyproject.toml than the installed .venv; pick a later one")
    return sha


def stage_seconds(clone: Path) -> dict:
    """Seconds of the parent run and of each stage's run, from the clone's MLflow store."""
    from mlflow import MlflowClient

    from pipeline.tracking import STAGE_TAG

    client = MlflowClient(tracking_uri=f"sqlite:///{clone / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("latentforge")
    if experiment is None:
        raise BenchError(f"no 'latentforge' experiment in {clone / 'mlflow.db'}")
    runs = client.search_runs([experiment.experiment_id], max_results=100)
    seconds, fid, pictures = {}, None, {}
    for run in runs:
        stage = run.data.tags.get(STAGE_TAG)
        if stage in (*STAGES, "main") and run.info.end_time:
            seconds[stage] = seconds.get(stage, 0.0) + (run.info.end_time - run.info.start_time) / 1000
        if stage == "main":
            fid = run.data.metrics.get("fid")
        elif stage in STAGES:
            pictures.setdefault(stage, []).extend(_pictures(client, run.info.run_id))
    if "main" not in seconds:
        raise BenchError("the clone's store has no finished main run")
    # The features run is nested in the evaluate stage: evaluate's own time is the rest.
    seconds["evaluate"] = seconds.get("evaluate", 0.0) - seconds.get("features", 0.0)
    return {"seconds": seconds, "fid": fid, "pictures": {k: sorted(v) for k, v in pictures.items()}}


def _pictures(client, run_id: str, path: str = "", depth: int = 3) -> list[str]:
    """The PNG artifacts of a run, ``depth`` folders deep."""
    found = []
    for item in client.list_artifacts(run_id, path or None):
        if item.is_dir and depth > 1:
            found += _pictures(client, run_id, item.path, depth - 1)
        elif item.path.endswith(".png"):
            found.append(item.path)
    return found


def one_run(sha: str, work: Path, params: tuple[str, ...] = ()) -> dict:
    """bin/run (with ``-P`` for each of ``params``) in a fresh clone of commit ``sha``: wall
    seconds, stage seconds, FID, the pictures each stage logged."""
    clone, home = work / "fresh", work / "home"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    subprocess.run(["git", "-C", str(clone), "checkout", "-q", sha], check=True)
    (clone / ".venv").symlink_to(ROOT / ".venv")
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in CLEARED and k not in ("VIRTUAL_ENV",)}
    env["HOME"] = str(home)
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    started = time.perf_counter()
    with open(work / "bin-run.log", "w") as log:
        command = ["bin/run", *(a for p in params for a in ("-P", p))]
        code = subprocess.run(command, cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - started
    if code:
        tail = (work / "bin-run.log").read_text().strip().splitlines()[-3:]
        raise BenchError(f"bin/run at {sha[:7]} exited {code}: {' | '.join(tail)}")
    measured = stage_seconds(clone)
    stages = measured["seconds"]
    row = {"commit": sha[:7], "wall_s": round(wall, 1), "pipeline_s": round(stages["main"], 1)}
    row.update({f"{stage}_s": round(stages.get(stage, 0.0), 1) for stage in STAGES})
    row["outside_stages_s"] = round(wall - sum(stages.get(stage, 0.0) for stage in STAGES), 1)
    row["fid"] = round(measured["fid"], 2) if measured["fid"] is not None else None
    row["pictures"] = measured["pictures"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", default="HEAD", help="comma-separated commits; the runs take turns")
    parser.add_argument("--rounds", type=int, default=1, help="runs per commit")
    parser.add_argument("--keep", action="store_true", help="keep the clones (their logs and stores)")
    parser.add_argument(
        "--work", default="", help="run in this new folder and keep it (one commit, one round): later steps read it"
    )
    parser.add_argument("--params", default="", help="comma-separated name=value for bin/run's -P, e.g. preset=...")
    parser.add_argument("--name", default="first_run", help="the record's name (default results: <name>.json)")
    record.add_arguments(parser, "first_run")
    args = parser.parse_args()
    if args.results == str(record.RESULTS / "first_run.json"):
        args.results = str(record.RESULTS / f"{args.name}.json")
    params = tuple(p.strip() for p in args.params.split(",") if p.strip())
    if args.work and (Path(args.work).exists() or args.rounds != 1 or "," in args.commits):
        sys.exit(f"first_run: --work takes a new folder, with one commit and one round: {args.work}")
    if any("=" not in p for p in params):
        sys.exit(f"first_run: --params takes name=value pairs, got '{args.params}'")
    if not (ROOT / ".venv" / "bin" / "python").is_file():
        sys.exit("first_run: no .venv in this checkout; run bin/setup first")
    try:
        commits = [resolve(c.strip()) for c in args.commits.split(",") if c.strip()]
    except BenchError as error:
        sys.exit(f"first_run: {error}")
    rows = []
    for round_index in range(args.rounds):
        for sha in commits:
            work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="latentforge-first-run-"))
            work.mkdir(parents=True, exist_ok=True)
            print(f"first_run: round {round_index + 1}, commit {sha[:7]}, in {work}", flush=True)
            try:
                row = one_run(sha, work, params)
            except (BenchError, subprocess.CalledProcessError) as error:
                sys.exit(f"first_run: {error} (clone and log kept in {work})")
            rows.append({"round": round_index + 1, **row})
            print("first_run: " + ", ".join(f"{k} {v}" for k, v in row.items() if k != "pictures"), flush=True)
            if not (args.keep or args.work):
                shutil.rmtree(work, ignore_errors=True)
    medians = {sha[:7]: statistics.median(r["wall_s"] for r in rows if r["commit"] == sha[:7]) for sha in commits}
    summary = {"median_wall_s": medians}
    if len(commits) > 1:
        first, last = commits[0][:7], commits[-1][:7]
        summary["ratio_last_to_first"] = round(medians[last] / medians[first], 3)
    print(f"first_run: median wall seconds {medians}", flush=True)
    record.write(
        args.name,
        args.results,
        parameters={"commits": [c[:7] for c in commits], "rounds": args.rounds, "params": list(params)},
        rows=rows,
        summary=summary,
        present=present,
    )


# ---- how docs/results.md shows the record (bench/report.py renders it) --------------------------
def _first_run_tables(record: dict):
    columns = [
        column("round", "round"),
        column("commit", "commit", "text"),
        column("wall_s", "bin/run s", "fixed:1"),
        column("data_s", "data s", "fixed:1"),
        column("train_s", "train s", "fixed:1"),
        column("export_s", "export s", "fixed:1"),
        column("features_s", "features s", "fixed:1"),
        column("evaluate_s", "evaluate s", "fixed:1"),
        column("promote_s", "promote s", "fixed:1"),
        column("outside_stages_s", "outside stages s", "fixed:1"),
        column("fid", "FID", "fixed:2"),
    ]
    return [("", columns, record["rows"])]


def _first_run_reading(record: dict) -> list[str]:
    medians = record["summary"]["median_wall_s"]
    lines = [f"Commit `{commit}`: median {minutes(seconds)}." for commit, seconds in medians.items()]
    if record["summary"].get("ratio_last_to_first") is not None:
        first, last = list(medians)[0], list(medians)[-1]
        lines.append(
            f"`{last}` took {record['summary']['ratio_last_to_first']:.2f}× the time of `{first}`, "
            "the runs taking turns on the same machine."
        )
    return lines


def readme_first_run(record: dict) -> str:
    """The README's sentence on how long the first bin/run takes, from first_run.json."""
    newest = list(record["summary"]["median_wall_s"].items())[-1]
    machine = record.get("machine") or {}
    load = (record.get("load_average") or {}).get("start")
    return (
        f"{minutes(newest[1])} from a fresh clone with `.venv` already installed, on "
        f"{machine.get('logical_cores', MISSING)} cores ({record.get('date', MISSING)[:10]}, commit `{newest[0]}`"
        + (f", load average {load[0]:.2f} at the start" if load else "")
        + "; stage by stage in [docs/results.md](docs/results.md#first-run-from-a-fresh-clone))"
    )


def present(record: dict) -> dict:
    """How docs/results.md shows this benchmark's record (``bench/record.py``), and the README's
    sentence on the first run."""
    reading = _first_run_reading(record)
    if record.get("parameters", {}).get("params"):
        given = " ".join(f"-P {p}" for p in record["parameters"]["params"])
        logged = {stage: len(paths) for stage, paths in (record["rows"][-1].get("pictures") or {}).items()}
        reading = [f"`bin/run {given}`.", *reading]
        if logged:
            reading.append("Pictures logged: " + ", ".join(f"{stage} {n}" for stage, n in logged.items()) + ".")
    if record.get("benchmark", "first_run") != "first_run":
        return presented(_first_run_tables(record), reading)
    readme = {"first_run": readme_first_run(record)}
    return presented(_first_run_tables(record), reading, readme=readme)


if __name__ == "__main__":
    main()
