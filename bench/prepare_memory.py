"""Benchmark: peak memory and time of preparing a large image folder (``latentforge data``).

For each count in ``--images`` makes a folder of that many PNGs (``--side`` x ``--side`` RGB, ten
class subfolders, each image a different random gradient with a random rectangle: real files that
compress and decode like pictures), then runs ``latentforge data --dataset <folder>`` as a child
process into a fresh TFDS dir and MLflow store, sampling every ``--interval`` seconds the resident
memory (RSS) of the command and of all its descendants (the decoding workers), summed. A sum of
RSS counts pages the processes share once per process: an upper bound on what they use together.
Two counts side by side show whether the peak grows with the number of images (streamed: it
should not).

    .venv/bin/python bench/prepare_memory.py [--images 5000,50000] [--side 64]
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
    parser.add_argument("--images", default="5000,50000", help="image counts, comma-separated, each its own folder")
    parser.add_argument("--side", type=int, default=64)
    parser.add_argument("--interval", type=float, default=0.05, help="seconds between memory samples")
    parser.add_argument("--work", default="", help="folder for the images and the store (default: a temporary one)")
    record.add_arguments(parser, "prepare_memory")
    args = parser.parse_args()
    counts = [int(n) for n in args.images.split(",")]
    work = Path(args.work or tempfile.mkdtemp(prefix="prepare-memory-"))
    rows = []
    try:
        for count in counts:
            place = work / str(count)
            folder = place / "images"
            if not folder.is_dir():
                print(f"prepare_memory: writing {count} PNG files of {args.side}x{args.side} into {folder}", flush=True)
                made = make_folder(folder, count, args.side)
            else:
                made = sum(p.stat().st_size for p in folder.rglob("*.png"))
            shutil.rmtree(place / "tfds", ignore_errors=True)
            (place / "mlflow.db").unlink(missing_ok=True)
            row = {"images": count, "side": args.side, "source_mib": round(made / 1024.0 / 1024.0, 1)}
            row.update(measure(folder, place, args.interval))
            print(f"prepare_memory: {row}", flush=True)
            rows.append(row)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    largest, smallest = rows[-1], rows[0]
    summary = {
        "images": largest["images"],
        "peak_total_mib": largest["peak_total_mib"],
        "under_1_gib": largest["peak_total_mib"] < LIMIT_MIB,
        "images_ratio": round(largest["images"] / smallest["images"], 2),
        "peak_ratio": round(largest["peak_total_mib"] / smallest["peak_total_mib"], 3),
    }
    record.write("prepare_memory", args.results, parameters=vars(args), rows=rows, summary=summary, present=present)


def present(result: dict) -> dict:
    """How docs/results.md shows this benchmark's record."""
    rows, summary = result["rows"], result["summary"]
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
    largest = rows[-1]
    verdict = "under" if largest["peak_total_mib"] < LIMIT_MIB else "over"
    reading = [
        f"Preparing {largest['images']:,} images of {largest['side']}x{largest['side']} took "
        f"{largest['seconds']:.0f} s with at most {largest['peak_total_mib']:.0f} MiB resident in the command and "
        f"its decoding workers together, {verdict} the 1 GiB the issue allows (a sum of RSS: shared pages count "
        "once per process)."
    ]
    if len(rows) > 1:
        reading.append(
            f"With {summary['images_ratio']:g}× the images the peak was {summary['peak_ratio']:.2f}× "
            f"({rows[0]['peak_total_mib']:.0f} MiB for {rows[0]['images']:,})."
        )
    return presented([("", columns, rows)], reading)


if __name__ == "__main__":
    main()
