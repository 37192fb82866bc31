"""The ``latentforge`` command: one subcommand per stage, ``main`` for the whole chain, and ``generate``.

Errors in the user's input print one line (``latentforge: error: …``) and exit with status 2.
``generate`` imports no TensorFlow. The libraries' chatter is silenced (``pipeline/quiet.py``);
``--verbose`` or ``LATENTFORGE_VERBOSE=1`` shows it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys

from contract.files import write_atomic
from pipeline import config as config_module
from pipeline import quiet, runtime_setup
from pipeline.errors import StageError, UserError, load_runtime

STAGE_FIELDS = {
    "main": None,  # every field
    "data": ("dataset", *config_module.FOLDER_FIELDS, "data_dir", "tfds_dir", "experiment"),
    "train": (
        "preset",
        *config_module.TRAIN_FIELDS,
        *config_module.FOLDER_FIELDS,
        "xflip",
        "workers",
        "tfds_dir",
        "experiment",
    ),
    "features": ("dataset", "dataset_name", "tfds_dir", "seed", "features_epochs", "features_examples", "experiment"),
    "evaluate": (
        "eval_samples",
        "metrics",
        "iwae_k",
        "iwae_examples",
        "seed",
        "tfds_dir",
        "features_epochs",
        "features_examples",
        "experiment",
    ),
    "export": ("experiment",),
    "promote": ("promote_margin", "primary_metric", "experiment"),
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line like every other error (exit status 2)."""

    def error(self, message):
        self.exit(2, f"latentforge: error: {message}; see '{self.prog} --help'\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="latentforge", description=__doc__.splitlines()[0])
    _add_verbose(parser)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for add in (
        _add_stages,
        _add_datasets,
        _add_generate,
        _add_style_mix,
        _add_serve,
        _add_playground,
        _add_tracking_server,
        _add_latent,
        _add_project,
    ):
        add(commands)
    for sub in commands.choices.values():
        _add_verbose(sub)
    return parser


def _add_stages(commands) -> None:
    """One command per pipeline stage (and ``main``), with the config fields it reads."""
    helps = {
        "main": "run every stage: data -> train -> export -> evaluate -> promote",
        "data": "prepare the dataset: a TFDS name, or a folder or .zip of images",
        "train": "train a model (reuses a finished run, resumes a killed one)",
        "features": "train and register the dataset's feature classifier (once; found in the registry after)",
        "evaluate": "score an exported generator with onnxruntime (FID, KID, P/R, D/C, modes; ELBO/IWAE for the VAE)",
        "export": "write SavedModel + ONNX, check parity, write the model card",
        "promote": "register the ONNX generator and move the champion alias when it is better",
    }
    for name, fields in STAGE_FIELDS.items():
        sub = commands.add_parser(
            name,
            help=helps[name],
            epilog=_families() if fields is None or "model" in fields else None,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        config_module.add_arguments(sub, fields)
        sub.add_argument("--dry-run", action="store_true", help="print the resolved config and stop")
        if name == "train":
            sub.add_argument("--data-run-id", default="", help="data run to read the dataset from")
        if name == "export":
            sub.add_argument("--train-run-id", required=True, help="the train run to read the model from")
        if name == "evaluate":
            sub.add_argument("--export-run-id", default="", help="the export run whose ONNX generator is measured")
            sub.add_argument("--model", default="", help="or a registered version: models:/<name>@<alias>")
        if name == "promote":
            sub.add_argument("--export-run-id", default="", help="the export run to register")
            sub.add_argument("--eval-run-id", default="", help="the evaluate run that measured that export")
            sub.add_argument(
                "--rollback",
                metavar="NAME",
                default="",
                help="instead: move champion of registered model NAME back to the previous one",
            )


def _add_generate(commands) -> None:
    generate = commands.add_parser("generate", help="write a PNG grid of generated images (onnxruntime only)")
    generate.add_argument(
        "--model",
        required=True,
        help="models:/<name>@<alias>, models:/<name>/<version>, an export folder or a .onnx file",
    )
    generate.add_argument("-n", type=int, default=64, help="number of images (default 64)")
    generate.add_argument("--seed", type=int, default=0, help="latent seed; the same seed gives the same bytes")
    generate.add_argument("--columns", type=int, default=0, help="grid columns (default: square)")
    generate.add_argument(
        "--label", default=None, help="conditional models: a class name (e.g. Sneaker) or index; default every class"
    )
    generate.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set one of the generator's other inputs for every image (its model card lists them), e.g. psi=0.7",
    )
    generate.add_argument(
        "--psi", type=float, default=None, help="style-based models: truncation towards the average w (0-1; 1 = none)"
    )
    generate.add_argument(
        "--noise", choices=("random", "zero"), default=None, help="models with noise inputs: zero = deterministic"
    )
    generate.add_argument("--out", default="grid.png", help="output PNG path (default grid.png)")


def _add_style_mix(commands) -> None:
    mix = commands.add_parser(
        "style-mix", help="style-mixing grid of a style-based model (StyleGAN): rows x columns of seeds"
    )
    mix.add_argument("--model", required=True, help="models:/<name>@<alias>, an export folder or a .onnx file")
    mix.add_argument("--rows", default="1,2,3,4", help="seeds of the row sources, comma-separated (default 1,2,3,4)")
    mix.add_argument("--cols", default="5,6,7,8", help="seeds of the column sources (default 5,6,7,8)")
    mix.add_argument(
        "--layers", default="coarse", help="styles taken from the columns: coarse, middle, fine or indices like 0,1"
    )
    mix.add_argument("--psi", type=float, default=1.0, help="truncation towards the average w (0-1; 1 = none)")
    mix.add_argument("--noise", choices=("random", "zero"), default="random", help="one shared noise draw, or zeros")
    mix.add_argument("--out", default="style_mix.png", help="output PNG path (default style_mix.png)")


def _add_serve(commands) -> None:
    serve = commands.add_parser("serve", help="HTTP API over a generator (onnxruntime; see serving/server.py)")
    serve.add_argument("--model", required=True, help="models:/<name>@<alias>, an export folder or a .onnx file")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--max-batch-size", type=int, default=64, help="images per merged onnxruntime call")
    serve.add_argument("--max-latency-ms", type=float, default=2.0, help="how long a request waits for company")
    serve.add_argument("--max-images", type=int, default=256, help="images per request at most")
    serve.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0 = its default)")
    serve.add_argument("--poll-seconds", type=float, default=0.0, help="re-resolve --model this often (0 = never)")
    serve.add_argument(
        "--public-model",
        action="store_true",
        help="with LATENTFORGE_TOKEN set, still send the playground (GET /) the model's card and ONNX without it",
    )


def _add_playground(commands) -> None:
    playground = commands.add_parser(
        "playground", help="write the browser playground for a model as a static site (see serving/playground.py)"
    )
    playground.add_argument("--model", required=True, help="models:/<name>@<alias>, an export folder or a .onnx file")
    playground.add_argument("--out", required=True, help="a new (or empty) folder for the site")


def _add_datasets(commands) -> None:
    datasets = commands.add_parser("datasets", help="fetch a public image dataset into a folder for -P dataset=DIR")
    datasets.add_argument("name", choices=("emoji",), help="emoji: Google's Noto emoji, 3,781 64x64 images, 9 classes")
    datasets.add_argument("--out", required=True, help="the folder to write (reused when it is already there)")


def _datasets(args) -> None:
    from pipeline import emoji

    def progress(done: int, total: int) -> None:
        if sys.stderr.isatty():
            print(f"\rdatasets: {done / 1e6:.1f} of {total / 1e6:.1f} MB", end="", file=sys.stderr, flush=True)

    print(f"datasets: fetching {emoji.PACKAGE.name}@{emoji.PACKAGE.version} (once; cached)", flush=True)
    folder, count, reused = emoji.build(args.out, progress)
    state = "already there" if reused else "written"
    print(f"datasets: {count} emoji images in {len(emoji.categories(folder))} classes {state}: {folder}")
    print(f"datasets: train on them with: bin/run -P dataset={folder}")


def _add_tracking_server(commands) -> None:
    server = commands.add_parser(
        "tracking-server", help="a team's MLflow server on PostgreSQL (see pipeline/tracking_server.py)"
    )
    server.add_argument("--dir", required=True, help="folder for the database and the artifacts (kept across starts)")
    server.add_argument("--host", default="127.0.0.1", help="bind address of the MLflow server (default 127.0.0.1)")
    server.add_argument("--port", type=int, default=5000, help="the MLflow server's port (default 5000)")
    server.add_argument(
        "--pg-port", type=int, default=0, help="PostgreSQL's port on 127.0.0.1 (default 0: any free one)"
    )


def _add_latent(commands) -> None:
    latent = commands.add_parser(
        "latent", help="latent interpolation strips and vector arithmetic (PNG, logged to MLflow)"
    )
    latent.add_argument("kind", choices=("interpolate", "arithmetic"))
    latent.add_argument("--model", required=True, help="models:/<name>@<alias>, an export folder or a .onnx file")
    latent.add_argument("--out", default="latent.png", help="output PNG path (default latent.png)")
    latent.add_argument("--seed", type=int, default=0, help="latent seed")
    latent.add_argument("--method", default="slerp", help="interpolate: slerp (default) or lerp")
    latent.add_argument("--rows", type=int, default=6, help="interpolate: number of strips")
    latent.add_argument("--steps", type=int, default=10, help="interpolate: images per strip")
    latent.add_argument("--label", default=None, help="interpolate, conditional models: class name or index")
    latent.add_argument(
        "--between", default="", help="interpolate: two projections a.npz,b.npz (latentforge project) instead of seeds"
    )
    latent.add_argument(
        "--a", default="", help="arithmetic: class A (name or index, or a projection .npz) in A - B + C"
    )
    latent.add_argument("--b", default="", help="arithmetic: class B")
    latent.add_argument("--c", default="", help="arithmetic: class C")
    latent.add_argument("--samples", type=int, default=2000, help="arithmetic: samples the groups are picked from")
    latent.add_argument("--exemplars", type=int, default=3, help="arithmetic: latents averaged per group")
    config_module.add_arguments(latent, ("tfds_dir", "features_epochs", "features_examples", "experiment"))


def _add_project(commands) -> None:
    project = commands.add_parser(
        "project", help="find the w (and noise) that a style-based model reproduces a real image with"
    )
    project.add_argument("--model", required=True, help="a stylegan: models:/<name>@<alias> or an export folder")
    project.add_argument("--image", required=True, help="the image (PNG, JPEG, WebP, BMP)")
    project.add_argument("--out", required=True, help="the .npz to write (and a .png beside it)")
    project.add_argument("--steps", type=int, default=500, help="optimisation steps (default 500)")
    project.add_argument("--w-plus", action="store_true", help="one w per layer (W+) instead of one w for all")
    project.add_argument("--seed", type=int, default=0, help="seeds the noise maps and the w noise")
    project.add_argument(
        "--background",
        default="",
        help="colour for a transparent image's see-through pixels: white, black, grey or #rrggbb "
        "(default: the one the model's training folder was prepared with, else white)",
    )
    project.add_argument(
        "--tfds-dir",
        dest="tfds_dir",
        default="",
        help="where the training folder was prepared (to read its background)",
    )


def _project(args) -> None:
    from pipeline import project

    project.run(
        args.model,
        args.image,
        args.out,
        steps=args.steps,
        w_plus=args.w_plus,
        seed=args.seed,
        background=args.background,
        tfds_dir=args.tfds_dir,
    )


def _add_verbose(parser: argparse.ArgumentParser) -> None:
    # main() reads the flag from argv before anything is imported; here it is only documented
    parser.add_argument(
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS,
        help=f"show the libraries' log lines, warnings and progress bars (or set {quiet.VERBOSE_VARIABLE}=1)",
    )


def _families() -> str:
    """The registered model families and the options each takes, for --help."""
    from models import registry

    lines = ["model families (--model):"]
    for name in registry.names():
        family = registry.get(name)
        options = [f.name for f in dataclasses.fields(family.options)]
        lines.append(f"  {name:8} {family.summary}" + (f"; options: {', '.join(options)}" if options else ""))
    return "\n".join(lines)


def _latent(args) -> None:
    from pipeline import tracking
    from pipeline.latent import run_latent

    config = config_module.from_args(args, ("tfds_dir", "features_epochs", "features_examples", "experiment"))
    if not 0 <= args.seed < 2**32:
        raise UserError(f"--seed must be between 0 and 2**32 - 1, got {args.seed}")
    if args.kind == "arithmetic" and not (args.a and args.b and args.c):  # before MLflow loads
        raise UserError(
            "arithmetic needs --a, --b and --c (class names or indices, or projections .npz), "
            "e.g. --a Sneaker --b Sandal --c Bag"
        )
    tracking.setup(config.experiment)
    if args.kind == "interpolate":
        kwargs = dict(
            seed=args.seed, rows=args.rows, steps=args.steps, method=args.method, label=args.label, between=args.between
        )
    else:
        kwargs = dict(
            a=args.a,
            b=args.b,
            c=args.c,
            seed=args.seed,
            samples=args.samples,
            exemplars=args.exemplars,
            tfds_dir=config.tfds_dir,
            features_epochs=config.features_epochs,
            features_examples=config.features_examples,
        )
    run_latent(args.kind, args.out, model=args.model, **kwargs)


def _serve(args) -> None:
    from serving.server import ServeSettings, serve

    if not 0 < args.port < 65536:
        raise UserError(f"--port must be 1-65535, got {args.port}")
    if args.max_batch_size < 1 or args.max_images < 1 or args.max_latency_ms < 0 or args.poll_seconds < 0:
        raise UserError("--max-batch-size and --max-images must be >= 1, --max-latency-ms and --poll-seconds >= 0")
    load_runtime(args.model)  # fail here, with one line, rather than inside the server's startup
    settings = ServeSettings(
        model=args.model,
        max_batch_size=args.max_batch_size,
        max_latency_ms=args.max_latency_ms,
        max_images=args.max_images,
        threads=args.threads,
        poll_seconds=args.poll_seconds,
        public_model=args.public_model,
    )
    url = f"http://{args.host}:{args.port}"
    print(f"serve: {args.model} on {url} (the playground at {url}/, OpenAPI at {url}/docs)", flush=True)
    serve(settings, args.host, args.port)


def _generate(args) -> None:
    from contract import images
    from serving import styles

    if not 1 <= args.n <= 4096:
        raise UserError(f"-n must be between 1 and 4096, got {args.n}")
    if args.columns < 0:
        raise UserError(f"--columns must be >= 0, got {args.columns}")
    if not 0 <= args.seed < 2**32:
        raise UserError(f"--seed must be between 0 and 2**32 - 1, got {args.seed}")
    out = _output_file(args.out)
    values = _input_values(args.input)
    runtime = load_runtime(args.model)
    try:
        runtime.labels(args.label, args.n)  # checked first, so the message can name the flag
    except ValueError as error:  # a label the model does not have, or a label for an unconditional model
        raise UserError(f"--label: {error}") from None
    try:
        values = styles.controls(runtime, args.psi, args.noise, values)
    except ValueError as error:  # "psi: ..." or "noise: ..."
        raise UserError(f"--{error}") from None
    try:
        generated = runtime.generate_uint8(args.n, args.seed, args.label, values)
    except ValueError as error:  # an input the model does not have, or a value out of its bounds
        raise UserError(f"--input: {error}") from None
    _write_png(out, images.grid(generated, columns=args.columns or None))
    print(f"wrote {out} ({args.n} images, seed {args.seed}, {runtime.card['model']} from {args.model})")


def _style_mix(args) -> None:

    import numpy as np

    from contract import images
    from serving import styles

    rows, cols = _seeds(args.rows, "--rows"), _seeds(args.cols, "--cols")
    layers = args.layers if args.layers in ("coarse", "middle", "fine") else _seeds(args.layers, "--layers")
    out = _output_file(args.out)
    runtime = load_runtime(args.model)
    try:
        feed = styles.mix_feed(runtime, rows, cols, layers, args.psi, args.noise)
    except ValueError as error:  # "layers: ...", "psi ...": the message names the flag
        raise UserError(f"--{error}") from None
    generated = np.array(runtime.run_feed(feed))
    generated[0] = images.blank(runtime.card["value_range"])  # the grid's corner
    _write_png(out, images.grid(images.to_uint8(generated, runtime.card["value_range"]), columns=len(cols) + 1))
    print(f"wrote {out} (rows {rows} with layers {layers} from columns {cols}, psi {args.psi})")


def _output_file(path: str):
    """``--out`` as a Path to a file in an existing folder; UserError otherwise."""
    from pathlib import Path

    out = Path(path)
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; pass a file name such as {out / 'grid.png'}")
    if not out.parent.is_dir():
        raise UserError(f"output folder {out.parent} does not exist; create it or pass another --out")
    return out


def _write_png(out, picture) -> None:
    """Write a uint8 picture as PNG, atomically; UserError when the file cannot be written."""
    from contract import images

    try:
        write_atomic(out, images.png_bytes(picture))
    except OSError as error:
        raise UserError(f"cannot write {out}: {error.strerror}; pass another --out") from None


def _seeds(text: str, flag: str) -> list[int]:
    """'1,2,3' -> [1, 2, 3]; UserError naming ``flag`` otherwise."""
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"{flag} {text!r}: give comma-separated integers, e.g. {flag} 1,2,3") from None
    if not seeds or any(not 0 <= s < 2**32 for s in seeds):
        raise UserError(f"{flag} {text!r}: give one or more integers between 0 and 2**32 - 1")
    return seeds


def _input_values(items: list[str]) -> dict[str, float]:
    """``--input NAME=VALUE`` flags -> {name: number}; UserError for a malformed one."""
    values = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            if not (sep and name.strip()):
                raise ValueError(item)
            values[name.strip()] = float(value)
        except ValueError:
            raise UserError(f"--input {item!r}: give NAME=NUMBER, e.g. --input psi=0.7") from None
    return values


def _run_stage(args) -> None:
    if args.command in ("train", "main") and os.environ.get("TF_CONFIG"):
        from pipeline import distributed

        distributed.member()  # TF_CONFIG read and checked before TensorFlow loads (one-line errors)
        distributed.strategy()  # a member of a TF_CONFIG cluster: the strategy before any TensorFlow op
    only = STAGE_FIELDS[args.command]
    config = config_module.from_args(args, only)
    if args.dry_run:
        import json

        print(json.dumps(config.resolved().to_dict(), indent=2))
        return
    from pipeline import tracking

    tracking.setup(config.experiment)
    STAGE_RUNNERS[args.command](config, args)


def _main_stage(config, args) -> None:
    from pipeline.main import run_main

    run_main(config)


def _data_stage(config, args) -> None:
    from pipeline.data import run_data

    run_data(config)


def _train_stage(config, args) -> None:
    from pipeline.train import run_train

    print(run_train(config, args.data_run_id or None))


def _features_stage(config, args) -> None:
    from pipeline.features import get_extractor
    from pipeline.inputs import describe

    spec = describe(config.dataset_id, config.tfds_dir)
    extractor = get_extractor(spec, config.seed, config.features_epochs, config.features_examples)
    print(f"features: {extractor.version} ({extractor.identity}), test accuracy {extractor.test_accuracy:.4f}")


def _evaluate_stage(config, args) -> None:
    from pipeline.evaluate import run_evaluate

    print(run_evaluate(config, args.export_run_id or None, args.model or None))


def _export_stage(config, args) -> None:
    from pipeline.export_stage import run_export

    print(run_export(config, args.train_run_id).run_id)


def _promote_stage(config, args) -> None:
    from pipeline.promote import rollback, run_promote

    if args.rollback:
        rollback(args.rollback)
    elif args.export_run_id and args.eval_run_id:
        print(run_promote(config, args.export_run_id, args.eval_run_id))
    else:
        raise UserError("promote needs --export-run-id <id> --eval-run-id <id> (or --rollback <registered model name>)")


STAGE_RUNNERS = {
    "main": _main_stage,
    "data": _data_stage,
    "train": _train_stage,
    "features": _features_stage,
    "evaluate": _evaluate_stage,
    "export": _export_stage,
    "promote": _promote_stage,
}


def _playground(args) -> None:
    from pathlib import Path

    from contract.files import first_line
    from contract.npm import FetchError
    from contract.sampler import SAMPLER
    from serving import playground

    out = Path(args.out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"--out {out} exists and is not an empty folder; pass a new folder")
    runtime = load_runtime(args.model)
    if runtime.sampler != SAMPLER:
        raise UserError(
            f"{args.model} was exported before the portable sampler, so the page's seeds would not match "
            f"latentforge generate; re-export it: latentforge export --train-run-id {runtime.card.get('train_run_id')}"
        )
    try:
        written = playground.write_site(runtime, out)
    except (FetchError, ValueError, OSError) as error:
        raise UserError(f"playground: {first_line(error)}") from None
    print(f"playground: wrote {written['files']} files ({written['bytes'] / 1e6:.1f} MB) to {out}")
    print(f"playground: host it with: python -m http.server 8000 --bind 127.0.0.1 --directory {out}")


def _tracking_server(args) -> None:
    from pipeline import tracking_server

    tracking_server.run(args.dir, args.port, args.pg_port, args.host)


COMMANDS = {
    "generate": _generate,
    "latent": _latent,
    "datasets": _datasets,
    "style-mix": _style_mix,
    "serve": _serve,
    "playground": _playground,
    "tracking-server": _tracking_server,
    "project": _project,
}  # and the stages: _run_stage


def main(argv: list[str] | None = None) -> int:
    """The program; with ``argv`` given (a caller in-process), the caller's logging is left as it is."""
    if argv is None:
        argv = sys.argv[1:]
        quiet.setup(verbose_flag="--verbose" in argv)  # before any library is imported
        runtime_setup.configure_threads()  # TensorFlow's pools sized to this process's cores
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        COMMANDS.get(args.command, _run_stage)(args)
    except UserError as error:
        print(f"latentforge: error: {error}", file=sys.stderr)
        return 2
    except StageError as error:
        print(f"latentforge: {args.command} failed: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("latentforge: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
