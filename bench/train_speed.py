"""Benchmark: training images/s of each family's default networks against a textbook DCGAN.

For each batch size (default 32, 64, 128): the textbook peer DCGAN (``bench/peer.py``: Géron's
chapter-17 networks and ``train_gan``, as printed) and each family's default networks,
built and fed exactly as the train stage builds and feeds them (``Family.build`` on the config's
defaults; ``pipeline.inputs.training_dataset`` on the prepared Fashion-MNIST, shuffled, cached,
prefetched). After a warm-up block per model (tracing, first-epoch decoding: not counted), the
models take turns, ``--rounds`` times, in blocks of ``--steps`` steps (peer, dcgan, ..., peer,
dcgan, ...), so that machine noise hits them alike. Every step is timed (Keras batch callbacks,
input fetch included); the table gives the median step.

Work per image is the float operations of the whole traced ``train_step`` (both phases of a
GAN step, forward and backward), counted by TensorFlow's graph profiler; with the measured
float32 matmul peak of this process (``tf.matmul`` of 1024×1024, median of the best block) it
gives the share of the CPU's peak each model reaches.

    .venv/bin/python bench/train_speed.py [--batches 32,64,128] [--rounds 5] [--steps 10]

``--models`` names a family or preset, with ``+field=value`` overrides of its config. ProGAN is
timed fully grown (its last level, at the dataset's side), as it trains once its growth is done.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from bench import record  # noqa: E402  (after the path insert)
from bench.record import column, presented, series, times  # noqa: E402

FAMILIES = ("dcgan", "cdcgan", "gan", "vae", "ae")
PEER = "peer-dcgan"  # Géron's DCGAN (bench/peer.py): the reference on Fashion-MNIST
PEER_ADA = "peer-ada"  # keras-io's data-efficient GAN with ADA (bench/peer_ada.py): the reference on colour folders
PEERS = (PEER, PEER_ADA)


def reference_of(names) -> str | None:
    """The first peer among ``names`` (speeds are shown relative to it), or None."""
    return next((n for n in names if n.split("+")[0] in PEERS), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="32,64,128", help="comma-separated batch sizes")
    parser.add_argument(
        "--models",
        default=",".join((PEER, *FAMILIES)),
        help=f"{PEER} or {PEER_ADA}, family or preset names, each with +field=value overrides "
        "(vae-fashion+precision=float32); speeds are relative to the first peer named",
    )
    parser.add_argument("--rounds", type=int, default=5, help="blocks per model and batch size")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per block")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--tfds-dir", default="")
    parser.add_argument("--name", default="train_speed", help="the benchmark's name in its record (train_speed_emoji)")
    record.add_arguments(parser, "train_speed")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    names = [n.strip() for n in args.models.split(",") if n.strip()]

    from pipeline import runtime_setup

    runtime_setup.configure_threads()  # as the train stage does, before any TensorFlow op
    import keras  # noqa: F401  (keras after the thread settings)

    from pipeline import inputs

    spec = inputs.describe(args.dataset, args.tfds_dir)
    peak = matmul_peak_gflops()
    print(f"float32 matmul peak of this process: {peak:.1f} GFLOP/s", flush=True)

    rows = []
    for batch in batches:
        subjects = {name: build(name, spec, batch) for name in names}
        for model, data in subjects.values():  # warm-up: tracing, first pass over the data
            model.fit(data, steps_per_epoch=max(3, args.steps // 2), epochs=1, verbose=0)
        times: dict[str, list[float]] = {name: [] for name in subjects}
        for _ in range(args.rounds):
            for name, (model, data) in subjects.items():
                times[name] += timed_steps(model, data, args.steps)
        for name, (model, data) in subjects.items():
            median_s = statistics.median(times[name])
            flops = step_flops(model, data) / batch
            rows.append(
                {
                    "batch": batch,
                    "model": name,
                    "median_ms": round(median_s * 1000, 2),
                    "q1_ms": round(statistics.quantiles(times[name], n=4)[0] * 1000, 2),
                    "q3_ms": round(statistics.quantiles(times[name], n=4)[2] * 1000, 2),
                    "images_per_s": round(batch / median_s, 1),
                    "mflop_per_image": round(flops / 1e6, 1),
                    "gflop_per_s": round(flops * batch / median_s / 1e9, 2),
                    "percent_of_peak": round(100 * flops * batch / median_s / 1e9 / peak, 1),
                }
            )
        peer = next((r for r in rows if r["batch"] == batch and r["model"] == reference_of(names)), None)
        for row in rows:
            if row["batch"] == batch and peer:
                row["speed_vs_peer"] = round(row["images_per_s"] / peer["images_per_s"], 2)
        print_table([r for r in rows if r["batch"] == batch])
        keras_clear()

    summary = {
        f"batch_{r['batch']}_{r['model']}_over_peer": r["speed_vs_peer"]
        for r in rows
        if r.get("speed_vs_peer") is not None and r["model"] != reference_of(names)
    }
    summary["matmul_peak_gflops"] = round(peak, 1)
    record.write(
        args.name,
        args.results,
        parameters={"batches": batches, "models": names, "rounds": args.rounds, "steps": args.steps},
        subject={"dataset": spec.name, "dataset_version": spec.version},
        rows=rows,
        summary=summary,
        present=present,
    )


def build(name: str, spec, batch: int, seed: int = 0):
    """(compiled training model, its training dataset) as the train stage makes them."""
    from pipeline import inputs

    if name.split("+")[0] in PEERS:  # +batch_size=N is the only override they take (bench/equal_time.py)
        import keras

        from contract import signature

        keras.utils.set_random_seed(seed)  # the weights' initialization (Family.build seeds ours)
        if name.split("+")[0] == PEER:
            from bench.peer import LATENT_DIM, PeerDCGAN

            model, latent_dim, value_range = PeerDCGAN(seed=seed), LATENT_DIM, "tanh"
        else:
            from bench.peer_ada import DEPTH, NOISE_SIZE, PeerADA

            if spec.image_shape[0] % 2**DEPTH or spec.image_shape[0] < 2**DEPTH:
                raise SystemExit(
                    f"{PEER_ADA} needs a side divisible by {2**DEPTH} (its recipe is 64x64); pass --dataset emoji"
                )
            model, latent_dim, value_range = PeerADA(spec.image_shape, seed=seed), NOISE_SIZE, PeerADA.value_range
        model.compile()
        model.export_signature = signature.generator(latent_dim, spec.image_shape, 0)
        model.value_range = value_range
        data = inputs.training_dataset(spec, batch_size=batch, value_range=value_range, seed=seed, repeat=True)
        return model, data
    from pipeline import presets
    from pipeline.config import Config
    from pipeline.loop import learning_rate_of, model_spec_for, precision_policy

    base, *overrides = name.split("+")
    values = {"preset": base} if base in presets.PRESETS else {"model": base}
    values.update(item.split("=", 1) for item in overrides)
    config = Config.from_dict({**values, "batch_size": batch, "seed": seed}).resolved()
    family = config.family
    model_spec = model_spec_for(config, spec)
    with precision_policy(config.precision):
        # the learning rate as the train stage sets it: a schedule runs over the config's epochs
        model = family.build(model_spec, learning_rate_of(config, spec))
    data = inputs.training_dataset(
        spec,
        batch_size=batch,
        value_range=family.value_range,
        seed=config.seed,
        repeat=True,
        binarize=model_spec.binarized,
        labels=family.labels,
    )
    model.export_signature = family.exports(model, model_spec)[0].signature  # how its generator is fed
    model.value_range = family.value_range
    if hasattr(model, "level_at"):  # progressive growing: timed fully grown, at the dataset's side
        model.images_seen.assign(2.0 * model.top * model.phase_images)  # fit sets the level from it
    return model, data


def timed_steps(model, data, steps: int) -> list[float]:
    """Seconds of each of ``steps`` training steps (the batch callbacks bracket one step each)."""
    import keras

    class Clock(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.seconds: list[float] = []
            self.started = 0.0

        def on_train_batch_begin(self, batch, logs=None):
            self.started = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            self.seconds.append(time.perf_counter() - self.started)

    clock = Clock()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[clock])
    return clock.seconds


def step_flops(model, data) -> float:
    """Float operations of one ``train_step`` on one batch of ``data`` (TensorFlow's graph profiler)."""
    import tensorflow as tf
    from tensorflow.python.profiler import model_analyzer, option_builder

    concrete = tf.function(model.train_step).get_concrete_function(data.element_spec)
    options = option_builder.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return float(model_analyzer.profile(concrete.graph, options=options).total_float_ops)


def matmul_peak_gflops(size: int = 1024, repeats: int = 20, blocks: int = 9) -> float:
    """This process's float32 matmul throughput: the best GFLOP/s of ``blocks`` (noise only slows)."""
    import tensorflow as tf

    a = tf.random.normal((size, size))

    @tf.function
    def chain(x):
        for _ in range(repeats):
            x = tf.matmul(x, a) * (1.0 / size)
        return x

    chain(a).numpy()
    rates = []
    for _ in range(blocks):
        started = time.perf_counter()
        chain(a).numpy()
        rates.append(2 * size**3 * repeats / (time.perf_counter() - started) / 1e9)
    return max(rates)


def print_table(rows: list[dict]) -> None:
    print(
        f"{'batch':>5} {'model':<28} {'ms/step':>8} {'images/s':>9} {'× peer':>7} {'MFLOP/img':>10} "
        f"{'GFLOP/s':>8} {'% peak':>7}"
    )
    for r in rows:
        ratio = f"{r['speed_vs_peer']:.2f}" if r.get("speed_vs_peer") is not None else "-"
        print(
            f"{r['batch']:>5} {r['model']:<28} {r['median_ms']:>8.1f} {r['images_per_s']:>9.1f} {ratio:>7} "
            f"{r['mflop_per_image']:>10.1f} {r['gflop_per_s']:>8.2f} {r['percent_of_peak']:>7.1f}",
            flush=True,
        )


def keras_clear() -> None:
    """Drop the last model's graphs and memory before the next one is built."""
    import gc

    import keras

    keras.backend.clear_session()
    gc.collect()


# ---- how docs/results.md shows the record (bench/report.py renders it) --------------------------
def _train_speed_tables(record: dict):
    columns = [
        column("batch", "batch"),
        column("model", "model", "text"),
        column("median_ms", "median ms/step", "fixed:1"),
        column("images_per_s", "images/s", "fixed:1"),
        column("speed_vs_peer", "× peer images/s", "fixed:2"),
        column("mflop_per_image", "MFLOP/image", "fixed:1"),
        column("gflop_per_s", "GFLOP/s", "fixed:1"),
        column("percent_of_peak", "% of matmul peak", "fixed:1"),
    ]
    return [("", columns, record["rows"])]


def _train_speed_reading(record: dict) -> list[str]:
    summary = record.get("summary", {})
    lines = []
    if summary.get("matmul_peak_gflops") is not None:
        lines.append(f"The process's float32 matmul peak was {summary['matmul_peak_gflops']:,.1f} GFLOP/s.")
    by_model: dict[str, list[tuple[int, float]]] = {}
    for key, value in summary.items():
        if key.startswith("batch_") and key.endswith("_over_peer"):
            batch, model = key.removeprefix("batch_").removesuffix("_over_peer").split("_", 1)
            by_model.setdefault(model, []).append((int(batch), value))
    for model in (m for m in by_model if "dcgan" in m and not m.startswith("cdcgan")):
        parts = [f"{times(value)} at batch {batch}" for batch, value in sorted(by_model[model])]
        lines.append(f"`{model}` reaches the peer's images/s times " + series(parts) + ".")
    return lines


def present(record: dict) -> dict:
    """How docs/results.md shows this benchmark's record (``bench/record.py``)."""
    return presented(_train_speed_tables(record), _train_speed_reading(record))


if __name__ == "__main__":
    main()
