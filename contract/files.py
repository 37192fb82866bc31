"""File helpers shared by every part: digests, one-line error causes, atomic writes (standard library only)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def sha256_file(path: str | Path, opener=open) -> str:
    """sha256 of a file's bytes (or, with ``opener=gzip.open``, of its decompressed content)."""
    digest = hashlib.sha256()
    with opener(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def first_line(error: BaseException, limit: int = 200) -> str:
    """The first line of ``error``'s message, cut to ``limit`` characters, or the error's type
    name when the message has none: the cause to quote inside a one-line message to a user."""
    lines = str(error).strip().splitlines()
    return lines[0][:limit] if lines else type(error).__name__


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the whole new one, never a part."""
    write_atomic_with(path, lambda out: out.write(data))


def write_atomic_with(path: str | Path, write: Callable[[BinaryIO], object]) -> None:
    """Like ``write_atomic``, for content that a callback streams: ``write(file)`` fills
    ``<name>.partial`` beside ``path``, which then replaces ``path``.

    Raises:
        Whatever opening, ``write`` or the replace raises (an OSError for a full disk or a
        read-only folder); the partial file is removed first, so a failed write leaves nothing.
    """
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    try:
        with open(partial, "wb") as out:
            write(out)
        partial.replace(path)
    except BaseException:  # an interrupted write must not leave a .partial behind either
        partial.unlink(missing_ok=True)
        raise
