"""A clean console: the libraries' start-up and progress chatter is silenced where it starts.

``latentforge`` calls :func:`setup` before TensorFlow, MLflow or onnxruntime is imported, so a run
shows latentforge's own stage lines and Keras' per-epoch lines. What can matter still shows: our
one-line errors, tracebacks, TensorFlow's C++ errors, MLflow's warnings, Python warnings.
``LATENTFORGE_VERBOSE=1`` (or ``latentforge <command> --verbose``) leaves every library as it is.

What is silenced, where it comes from, and how:

- ``I… cpu_feature_guard.cc …: AVX2 FMA`` and TensorFlow's other C++ INFO and WARNING lines:
  ``TF_CPP_MIN_LOG_LEVEL=2`` (its errors still show); gRPC's lines: ``GRPC_VERBOSITY=ERROR``.
- ``WARNING: All log messages before absl::InitializeLog() is called…`` with ``I… cudart_stub.cc:
  Could not find cuda drivers…``, then ``E… failed call to cuInit`` on a machine without a CUDA
  driver: absl lines that TensorFlow's shared libraries write while they load and probe for
  CUDA, before TensorFlow applies TF_CPP_MIN_LOG_LEVEL. While ``tensorflow`` is imported and
  lists its devices (then, not at its first op), stderr is captured and written back without
  the absl lines below TF_CPP_MIN_LOG_LEVEL, absl's note about them, and the cuInit error when no driver was
  found. Any other line comes through.
- MLflow's INFO lines (``Creating initial MLflow database tables…``, ``Experiment … does not
  exist. Creating a new experiment``): ``MLFLOW_LOGGING_LEVEL=WARNING`` (``bin/run`` sets it for
  ``mlflow run`` itself: ``=== Running command …``); its ``Downloading artifacts: 100%|…`` bars:
  ``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false``.
- ``WARNING:absl:Variant folder … has no dataset_info.json`` (tensorflow_datasets through absl's
  Python logger): logger ``absl`` at ERROR. TFDS's own progress bars: ``pipeline/data.py``.
- tf2onnx's INFO and WARNING lines: logger ``tf2onnx`` at ERROR (a bad conversion fails the
  export stage's parity check).
- ``WARNING:root:Please consider (to run) pre-processing before quantization…``
  (onnxruntime.quantization, on the root logger): a filter on the root logger drops these two
  messages, and no other.
- onnxruntime's C++ warnings: ``onnxruntime.set_default_logger_severity(3)`` once it is imported.
- ``E… meta_optimizer.cc:…] remapper failed: INVALID_ARGUMENT: Mutation::Apply error: fanout
  '…/LeakyReluGrad' exist for missing node '…'``, which TensorFlow's graph optimizer writes when a
  GAN's training step is first optimized (docs/usage.md says why it is harmless): while a model
  trains (:func:`training_console`), stderr passes through a filter process that drops lines
  matching :data:`HARMLESS_TRAINING_ERRORS` and forwards every other line as it comes (a process,
  so what a crashing trainer wrote last still comes out). Other remapper failures, and every
  other TensorFlow error, still show.

The environment variables reach child processes too (``mlflow run``'s, the benchmarks').
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import logging
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable

VERBOSE_VARIABLE = "LATENTFORGE_VERBOSE"
ENVIRONMENT = {
    "TF_CPP_MIN_LOG_LEVEL": "2",  # 0 INFO, 1 WARNING, 2 ERROR, 3 FATAL: TensorFlow's C++ lines below this
    "GRPC_VERBOSITY": "ERROR",
    "MLFLOW_LOGGING_LEVEL": "WARNING",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}
QUIET_LOGGERS = ("absl", "tf2onnx")  # set to ERROR
ROOT_MESSAGES = (  # dropped from the root logger, by how they start
    "Please consider to run pre-processing before quantization",
    "Please consider pre-processing before quantization",
)

# An absl C++ log line: severity letter, MMDD, time, thread, file:line] message.
_ABSL_LINE = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:[\d.]+ +\d+ [^\]\s]+:\d+\] ")
_ABSL_PREAMBLE = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_NO_CUDA_DRIVER = re.compile(r"cudart_stub\.cc:\d+\] Could not find cuda drivers")
_CUINIT_FAILED = re.compile(r"\] failed call to cuInit")


# TensorFlow C++ error lines known to be harmless while a model trains (docs/usage.md), as regex
# sources that the filter process searches in an absl line. The remapper's, for the leaky ReLU's
# gradient only: it gives up one fusion and leaves the graph as written.
HARMLESS_TRAINING_ERRORS = (
    r"meta_optimizer\.cc:\d+\] remapper failed: INVALID_ARGUMENT: Mutation::Apply error: "
    r"fanout '[^']*/LeakyReluGrad' exist for missing node '[^']*'",
)

_active = False


def verbose() -> bool:
    """True when the user asked for the libraries' full output (``LATENTFORGE_VERBOSE`` set, not 0)."""
    return os.environ.get(VERBOSE_VARIABLE, "") not in ("", "0")


def active() -> bool:
    """True once :func:`setup` has silenced this process (code that prints its own progress asks)."""
    return _active


def setup(verbose_flag: bool = False) -> None:
    """Silence the chatter listed in the module docstring, for this process and its children.

    Call it before TensorFlow, MLflow or onnxruntime is imported (what is imported earlier keeps
    its settings); calling it again does nothing more.

    Args:
        verbose_flag: the user passed ``--verbose``: set ``LATENTFORGE_VERBOSE=1`` (children see
            it too) and silence nothing.
    """
    global _active
    if verbose_flag:
        os.environ[VERBOSE_VARIABLE] = "1"
    if verbose():
        return
    _active = True
    for key, value in ENVIRONMENT.items():
        os.environ.setdefault(key, value)  # a value the user set is theirs
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    root = logging.getLogger()
    if not any(isinstance(f, _DropMessages) for f in root.filters):
        root.addFilter(_DropMessages(ROOT_MESSAGES))
    if not any(isinstance(f, _AroundImport) for f in sys.meta_path):
        hooks = {"tensorflow": _import_tensorflow, "onnxruntime": _import_onnxruntime}
        sys.meta_path.insert(0, _AroundImport({k: v for k, v in hooks.items() if k not in sys.modules}))


class _DropMessages(logging.Filter):
    """Drops records whose message starts with one of ``prefixes`` (a logger's own records only)."""

    def __init__(self, prefixes: tuple[str, ...]):
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


@contextlib.contextmanager
def training_console():
    """While a model trains: drop the harmless TensorFlow error lines (HARMLESS_TRAINING_ERRORS)
    from stderr, forwarding every other line as it comes. Nothing is dropped unless :func:`setup`
    silenced this process (``--verbose`` shows all)."""
    if not _active:
        yield
        return
    with _stderr_lines_dropped([_ABSL_LINE.pattern, *HARMLESS_TRAINING_ERRORS]):
        yield


# The filter process: reads its stdin (our fd 2) and writes to its stderr (our real stderr) every
# line except those that match argv[1] (at the start) and one of argv[2:] (anywhere). A line ends
# at a newline or carriage return; an unfinished one is written after 0.2 s without more. It
# ignores SIGINT and SIGTERM and ends when every writer has closed the pipe, so what a crashing
# parent wrote last (a fatal error, a faulthandler dump) still comes out.
_FILTER_PROGRAM = r"""
import os, re, select, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
start, anywhere = re.compile(sys.argv[1].encode()), [re.compile(a.encode()) for a in sys.argv[2:]]
def write(data):
    try:
        while data:
            data = data[os.write(2, data):]
    except OSError:
        pass
pending = b""
while True:
    if not select.select([0], [], [], 0.2)[0]:
        write(pending)
        pending = b""
        continue
    chunk = os.read(0, 1 << 16)
    if not chunk:
        break
    *lines, pending = re.split(rb"(?<=[\n\r])", pending + chunk)
    for line in lines:
        if not (start.match(line) and any(a.search(line) for a in anywhere)):
            write(line)
write(pending)
"""


@contextlib.contextmanager
def _stderr_lines_dropped(patterns: list[str]):
    """Route file descriptor 2 through a filter process (``_FILTER_PROGRAM`` over ``patterns``).

    A process, not a thread: it needs no GIL and outlives a crash of this one. On exit, fd 2 is
    put back and the filter drains what is left. When the filter cannot be set up (stderr
    closed, no file descriptors left), nothing is filtered.
    """
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        saved = os.dup(2)
    except (AttributeError, OSError, ValueError):  # sys.stderr None or closed, fd 2 closed
        yield
        return
    try:
        process = subprocess.Popen(
            [sys.executable, "-I", "-S", "-c", _FILTER_PROGRAM, *patterns],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=saved,
        )
        assert process.stdin is not None  # stdin=PIPE
        os.dup2(process.stdin.fileno(), 2)
        process.stdin.close()  # fd 2 is the pipe's only write end here
    except OSError:
        os.close(saved)
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe closes; the filter writes what is left and ends
        os.close(saved)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)  # a child of ours that inherited fd 2 may keep it open longer


# ---- around the first import of a library ------------------------------------------------------
Hook = Callable[[Callable[[], None], object], None]  # hook(load, module): must call load()


class _AroundImport(importlib.abc.MetaPathFinder):
    """Runs ``hooks[name](load, module)`` in place of a top-level module's first execution.

    The module is found as usual (``PathFinder``); only its loader's ``exec_module`` is wrapped,
    and the original loader is put back once the module has run.
    """

    def __init__(self, hooks: dict[str, Hook]):
        self.hooks = hooks

    def find_spec(self, name, path=None, target=None):
        if name not in self.hooks:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None  # not ours to find: the other finders go on as usual
        # find_spec alone (importlib.util.find_spec("tensorflow"), a check whether it is installed)
        # executes nothing: the hook is used up when the module runs
        spec.loader = _HookedLoader(spec.loader, self.hooks, name)
        return spec


class _HookedLoader(importlib.abc.Loader):
    def __init__(self, loader, hooks: dict[str, Hook], name: str):
        self.loader, self.hooks, self.name = loader, hooks, name

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        module.__spec__.loader = module.__loader__ = self.loader
        hook = self.hooks.pop(self.name, None)
        if hook is None:
            self.loader.exec_module(module)
        else:
            hook(lambda: self.loader.exec_module(module), module)

    def __getattr__(self, name):  # get_resource_reader, get_source, ...: the real loader's
        return getattr(self.loader, name)


def _import_tensorflow(load: Callable[[], None], tensorflow) -> None:
    with _stderr_filtered(_tensorflow_chatter):
        load()
        # Probing for CUDA logs too (cuInit): do it now, inside the capture, not at the first op.
        # Listing physical devices leaves logical devices and thread pools configurable.
        with contextlib.suppress(Exception):  # a failure here fails again, visibly, at the first op
            tensorflow.config.list_physical_devices()


def _import_onnxruntime(load: Callable[[], None], onnxruntime) -> None:
    load()
    onnxruntime.set_default_logger_severity(3)  # 0 verbose, 1 info, 2 warning, 3 error, 4 fatal


def _tensorflow_chatter(lines: list[str]) -> list[str]:
    """The lines TensorFlow's libraries wrote while loading, less those TF_CPP_MIN_LOG_LEVEL hides."""
    try:
        level = int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0"))
    except ValueError:
        level = 0
    no_driver = any(_NO_CUDA_DRIVER.search(line) for line in lines)
    kept = []
    for line in lines:
        match = _ABSL_LINE.match(line)
        if line.rstrip("\n") == _ABSL_PREAMBLE:
            continue
        if match and "IWEF".index(match.group(1)) < level:
            continue
        if no_driver and _CUINIT_FAILED.search(line):
            continue  # no CUDA driver installed: that cuInit fails is expected, the CPU is used
        kept.append(line)
    return kept


@contextlib.contextmanager
def _stderr_filtered(keep: Callable[[list[str]], list[str]]):
    """Capture file descriptor 2 (C++ libraries write there) and write back what ``keep`` keeps."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            lines = captured.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(keep(lines)))
            sys.stderr.flush()
