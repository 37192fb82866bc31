"""Benchmark: HTTP serving of one generator, `latentforge serve` vs `mlflow models serve`.

Starts each server on loopback for the same registered model, then runs a bounded load of
single-image requests at each concurrency (1, 8, 32 by default): at most --requests requests
or --seconds seconds per level, whichever ends first, over keep-alive connections from a
light asyncio client (raw HTTP/1.1, so the client costs little of the shared CPUs). Prints
requests/s, p50 and p99 latency, errors, and latentforge's throughput ratio to MLflow's, and
writes them with their provenance to bench/results/serving.json (``bench/record.py``).

    .venv/bin/python bench/serving.py [--model models:/fashion_mnist-dcgan@champion] [--concurrency 1,8,32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import record  # noqa: E402  (after the path insert)
from bench.record import column, presented, series, times  # noqa: E402

WARM_UP = {"concurrency": 4, "requests": 200, "seconds": 5}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _one_connection(port: int, path: str, bodies, deadline: float, budget: list, latencies: list, errors: list):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while budget[0] > 0 and time.perf_counter() < deadline:
            budget[0] -= 1
            body = bodies[budget[0] % len(bodies)]
            request = (
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode() + body
            started = time.perf_counter()
            writer.write(request)
            await writer.drain()
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if not status_line.startswith(b"HTTP/1.1 200"):
                errors.append(status_line.decode("latin-1").strip())
    finally:
        writer.close()


async def load(port: int, path: str, bodies, concurrency: int, requests: int, seconds: float) -> dict:
    budget, latencies, errors = [requests], [], []
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(
        *(_one_connection(port, path, bodies, deadline, budget, latencies, errors) for _ in range(concurrency))
    )
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] * 1000,
        "errors": len(errors),
    }


def wait_ready(port: int, path: str, process, timeout: float = 120) -> None:
    import urllib.request

    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited: {process.stderr.read()[-2000:] if process.stderr else ''}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"server on port {port} not ready after {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models:/fashion_mnist-dcgan@champion")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--requests", type=int, default=5000, help="per concurrency level, at most")
    parser.add_argument("--seconds", type=float, default=10.0, help="per concurrency level, at most")
    parser.add_argument("--servers", default="latentforge,mlflow")
    parser.add_argument("--serve-args", default="", help="extra flags for latentforge serve, e.g. '--threads 1'")
    record.add_arguments(parser, "serving")
    args = parser.parse_args()

    import numpy as np

    from serving.runtime import GeneratorRuntime

    card = GeneratorRuntime.load(args.model).card
    latent = int(card["latent_dim"])
    rng = np.random.default_rng(0)
    bodies = {
        "latentforge": ("/v1/generate", [json.dumps({"n": 1, "seed": i, "format": "npy"}).encode() for i in range(64)]),
        "mlflow": (
            "/invocations",
            [
                json.dumps({"inputs": {"z": rng.standard_normal((1, latent)).round(5).tolist()}}).encode()
                for _ in range(64)
            ],
        ),
    }
    # mlflow models serve execs `uvicorn` by name: the venv's bin must be on PATH even when this
    # script runs as .venv/bin/python without an activated venv
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PATH": path}
    results = {}
    for server in args.servers.split(","):
        port = free_port()
        if server == "latentforge":
            command = [sys.executable, "-m", "pipeline.cli", "serve", "--model", args.model, "--port", str(port)]
            command += args.serve_args.split()
            ready = "/readyz"
        else:
            command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", args.model, "--env-manager", "local"]
            command += ["-p", str(port)]
            ready = "/ping"
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            wait_ready(port, ready, process)
            path, payloads = bodies[server]
            asyncio.run(load(port, path, payloads, **WARM_UP))
            for concurrency in (int(c) for c in args.concurrency.split(",")):
                results[(server, concurrency)] = asyncio.run(
                    load(port, path, payloads, concurrency, args.requests, args.seconds)
                )
                print(server, concurrency, json.dumps(results[(server, concurrency)]), file=sys.stderr, flush=True)
        finally:
            process.terminate()
            process.wait(timeout=30)
    print(f"{args.model} ({card['model']}), single-image requests on loopback, {os.cpu_count()} CPUs")
    print(f"bounded load per level: at most {args.requests} requests or {args.seconds:.0f} s")
    print()
    print("| server | concurrency | requests | requests/s | p50 ms | p99 ms | errors | × mlflow |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for (server, concurrency), r in results.items():
        base = results.get(("mlflow", concurrency))
        ratio = r["rps"] / base["rps"] if base else None
        print(
            f"| {server} | {concurrency} | {r['requests']} | {r['rps']:,.0f} | {r['p50_ms']:.2f} | "
            f"{r['p99_ms']:.2f} | {r['errors']} | {f'{ratio:.1f}' if ratio is not None else '-'} |"
        )
        rows.append({"server": server, "concurrency": concurrency, **r, "ratio_to_mlflow": ratio})
    record.write(
        "serving",
        args.results,
        parameters={
            "model": args.model,
            "concurrency": args.concurrency,
            "requests": args.requests,
            "seconds": args.seconds,
            "servers": args.servers,
            "serve_args": args.serve_args,
            "warm_up": WARM_UP,
            "request": "one image per request: latentforge POST /v1/generate {n: 1, seed, format: npy}; "
            "mlflow POST /invocations {inputs: {z: (1, latent_dim)}}",
        },
        subject={"uri": args.model, "model": card.get("model"), "latent_dim": latent},
        rows=rows,
        present=present,
    )


# ---- how docs/results.md shows the record (bench/report.py renders it) --------------------------
SERVER_NAMES = {"latentforge": "`latentforge serve`", "mlflow": "`mlflow models serve`"}


def _serving_tables(record: dict):
    rows = [{**r, "server": SERVER_NAMES.get(r["server"], r["server"])} for r in record["rows"]]
    columns = [
        column("server", "server", "text"),
        column("concurrency", "concurrency"),
        column("requests", "requests"),
        column("rps", "requests/s", "fixed:0"),
        column("p50_ms", "p50 ms", "fixed:2"),
        column("p99_ms", "p99 ms", "fixed:2"),
        column("errors", "errors"),
        column("ratio_to_mlflow", "× mlflow requests/s", "fixed:1"),
    ]
    return [("", columns, rows)]


def _serving_reading(record: dict) -> list[str]:
    ours = [r for r in record["rows"] if r["server"] == "latentforge" and r.get("ratio_to_mlflow") is not None]
    lines = []
    if ours:
        lines.append(
            "`latentforge serve` answered "
            + series([times(r["ratio_to_mlflow"]) for r in ours])
            + " the requests per second of `mlflow models serve` at concurrency "
            + series([str(r["concurrency"]) for r in ours])
            + "."
        )
    errors = sum(row.get("errors", 0) for row in record["rows"])
    lines.append(f"Errors over all levels: {errors}.")
    return lines


def present(record: dict) -> dict:
    """How docs/results.md shows this benchmark's record (``bench/record.py``)."""
    return presented(_serving_tables(record), _serving_reading(record))


if __name__ == "__main__":
    main()
