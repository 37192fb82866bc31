"""Benchmark: peak memory and time of preparing a large image folder (``latentforge data``).

Makes a folder of ``--images`` PNGs (``--side`` x ``--side`` RGB, ten class subfolders, each
image a different random gradient with a random rectangle: real files that compress and decode
like pictures), then runs ``latentforge data --dataset <folder>`` as a child process into a fresh
TFDS dir and MLflow store, sampling every ``--interval`` seconds the resident memory (RSS) of
the command and of all its descendants (the decoding workers), summed. A sum of RSS counts pages
the processes share once per process: an upper bound on what they use together.

    .venv/bin/python bench/prepare_memory.py [--images 50000] [--side 64]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import record  # noqa: E402  (after the path insert)
from bench.record import column, presented  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LIMIT_MIB = 1024.0


def make_folder(folder: Path, count: int, side: int, seed: int = 0) -> int:
    """``count`` PNG files in ten class subfolders; their total bytes."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.0, 1.0, side, dtype=np.float32)
    total = 0
    for index in range(count):
        start, end = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        pixels = start + (end - start) * ramp[None, :, None] * np.ones((side, 1, 1), np.float32)
        top, left = rng.integers(0, side // 2, 2)
        pixels[top : top + side // 3, left : left + side // 3] = rng.uniform(0, 255, 3)
        path = folder / f"class{index % 10}" / f"{index:06d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels.astype(np.uint8)).save(path)
        total += path.stat().st_size
    return total


def tree_rss(process) -> tuple[int, int]:
    """(RSS of ``process``, summed RSS of its descendants), bytes; vanished processes count 0."""
    import psutil

    try:
        own = process.memory_info().rss
        children = process.children(recursive=True)
    except psutil.NoSuchProcess:
        return 0, 0
    total = 0
    for child in children:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += child.memory_info().rss
    return own, total


def measure(folder: Path, work: Path, interval: float) -> dict:
    """Run the data stage on ``folder``; its seconds and peak memory (MiB)."""
    import psutil

    environment = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{work / 'mlflow.db'}"}
    command = [str(Path(sys.executable).parent / "latentforge"), "data", "--dataset", str(folder)]
    command += ["--tfds-dir", str(work / "tfds")]
    log = work / "data.log"  # a file, not a pipe: a pipe nobody reads fills up and stalls the child
    with open(log, "w") as output_file:
        started = time.perf_counter()
        child = subprocess.Popen(command, env=environment, stdout=output_file, stderr=subprocess.STDOUT)
        try:
            watched = psutil.Process(child.pid)
            peak_total = peak_main = peak_workers = 0
            while child.poll() is None:
                main, workers = tree_rss(watched)
                peak_total, peak_main, peak_workers = (
                    max(peak_total, main + workers),
                    max(peak_main, main),
                    max(peak_workers, workers),
                )
                time.sleep(interval)
            seconds = time.perf_counter() - started
        finally:  # interrupted (Ctrl-C) or failed: no orphaned data stage left running
            if child.poll() is None:
                with contextlib.suppress(psutil.NoSuchProcess):
                    for worker in psutil.Process(child.pid).children(recursive=True):
                        worker.kill()
                child.kill()
                child.wait()
    if child.returncode:
        raise SystemExit(f"latentforge data failed ({child.returncode}):\n{log.read_text()[-3000:]}")
    prepared = sum(p.stat().st_size for p in (work / "tfds").rglob("*") if p.is_file())
    mib = 1024.0 * 1024.0
    return {
        "seconds": round(seconds, 1),
        "peak_total_mib": round(peak_total / mib, 1),
        "peak_command_mib": round(peak_main / mib, 1),
        "peak_workers_mib": round(peak_workers / mib, 1),
        "prepared_mib": round(prepared / mib, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--side", type=int, default=64)
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between memory samples")
    parser.add_argument("--work", default="", help="folder for the images and the store (default: a temporary one)")
    record.add_arguments(parser, "prepare_memory")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="prepare-memory-"))
    try:
        folder = work / "images"
        if not folder.is_dir():
            print(
                f"prepare_memory: writing {args.images} PNG files of {args.side}x{args.side} into {folder}", flush=True
            )
            made = make_folder(folder, args.images, args.side)
        else:
            made = sum(p.stat().st_size for p in folder.rglob("*.png"))
        shutil.rmtree(work / "tfds", ignore_errors=True)
        row = {"images": args.images, "side": args.side, "source_mib": round(made / 1024.0 / 1024.0, 1)}
        row.update(measure(folder, work, args.interval))
        print(f"prepare_memory: {row}")
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    record.write(
        "prepare_memory",
        args.results,
        parameters=vars(args),
        rows=[row],
        summary={"peak_total_mib": row["peak_total_mib"], "under_1_gib": row["peak_total_mib"] < LIMIT_MIB},
        present=present,
    )


def present(result: dict) -> dict:
    """How docs/results.md shows this benchmark's record."""
    row = result["rows"][0]
    columns = [
        column("images", "images"),
        column("side", "side"),
        column("source_mib", "source MiB", "fixed:1"),
        column("seconds", "seconds", "fixed:1"),
        column("peak_command_mib", "peak RSS, command (MiB)", "fixed:0"),
        column("peak_workers_mib", "peak RSS, workers (MiB)", "fixed:0"),
        column("peak_total_mib", "peak RSS, together (MiB)", "fixed:0"),
        column("prepared_mib", "prepared MiB", "fixed:1"),
    ]
    verdict = "under" if row["peak_total_mib"] < LIMIT_MIB else "over"
    reading = [
        f"Preparing {row['images']:,} images of {row['side']}x{row['side']} took {row['seconds']:.0f} s with at "
        f"most {row['peak_total_mib']:.0f} MiB resident in the command and its decoding workers together, "
        f"{verdict} the 1 GiB the issue allows (a sum of RSS: shared pages count once per process)."
    ]
    return presented([("", columns, [row])], reading)


if __name__ == "__main__":
    main()
