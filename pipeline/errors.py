"""The one exception type a user sees: a problem with their input, and how to fix it."""


class UserError(Exception):
    """Bad input from the user (a name, a number, a path, a URI).

    The CLI prints its message as one line and exits with status 2; no traceback.
    The message names the problem and the fix.
    """


class StageError(Exception):
    """A stage found its own output unfit to ship (e.g. a failed parity check).

    The CLI prints its message as one line and exits with status 1; nothing was logged as output.
    """


def load_runtime(uri: str, **kwargs):
    """``serving.runtime.GeneratorRuntime.load``, with a model that cannot be found or trusted
    turned into a one-line UserError."""
    from serving.runtime import GeneratorRuntime, ModelLoadError

    try:
        return GeneratorRuntime.load(uri, **kwargs)
    except ModelLoadError as error:
        raise UserError(str(error)) from None
