"""A clean console by settings only: environment variables, logger levels and a logging filter.

``latentforge`` calls :func:`setup` before TensorFlow, MLflow or onnxruntime is imported, so a run
shows latentforge's own stage lines and Keras' per-epoch lines; our one-line errors, tracebacks,
TensorFlow's C++ errors, MLflow's warnings and Python warnings still show.
``LATENTFORGE_VERBOSE=1`` (or ``latentforge <command> --verbose``) leaves every library as it is.

- TensorFlow's C++ INFO and WARNING lines once it has set up its logging: ``TF_CPP_MIN_LOG_LEVEL=2``;
  gRPC's: ``GRPC_VERBOSITY=ERROR``.
- MLflow's INFO lines: ``MLFLOW_LOGGING_LEVEL=WARNING``; its download bars:
  ``MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR=false``.
- tensorflow_datasets' absl warnings and tf2onnx's lines: loggers ``absl`` and ``tf2onnx`` at ERROR.
- onnxruntime.quantization's pre-processing hint (on the root logger): a filter drops those two
  messages only. onnxruntime's C++ warnings: every session latentforge makes logs errors only
  (``log_severity_level`` 3, set where the session is made).
- What no setting reaches: the lines TensorFlow's shared libraries write while they load, before
  its logging is set up (absl's preamble, "oneDNN custom operations are on", the CUDA probe on a
  machine without a driver), and the graph optimizer's harmless remapper error on a GAN's step
  (docs/usage.md says why it is harmless). ``bin/run`` drops exactly those from its stderr
  (``bin/quiet-stderr`` lists them); a ``latentforge`` command run by hand shows them.

The environment variables reach child processes too (``mlflow run``'s, Ray's workers, the benchmarks').
"""

from __future__ import annotations

import logging
import os

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

_active = False


def verbose() -> bool:
    """True when the user asked for the libraries' full output (``LATENTFORGE_VERBOSE`` set, not 0)."""
    return os.environ.get(VERBOSE_VARIABLE, "") not in ("", "0")


def active() -> bool:
    """True once :func:`setup` has quieted this process (code that prints its own progress asks)."""
    return _active


def setup(verbose_flag: bool = False) -> None:
    """Apply the settings in the module docstring, for this process and its children.

    Call it before TensorFlow, MLflow or onnxruntime is imported (what is imported earlier keeps
    its settings); calling it again does nothing more.

    Args:
        verbose_flag: the user passed ``--verbose``: set ``LATENTFORGE_VERBOSE=1`` (children see
            it too) and quiet nothing.
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


class _DropMessages(logging.Filter):
    """Drops records whose message starts with one of ``prefixes`` (a logger's own records only)."""

    def __init__(self, prefixes: tuple[str, ...]):
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)
