"""npm package tarballs without Node: a plain HTTP GET, checked against the sha512 integrity the
registry publishes (pinned here by the caller), kept in a local cache (standard library only).

Used for the emoji dataset (``pipeline/emoji.py``) and the browser runtime the playground serves.
"""

from __future__ import annotations

import base64
import hashlib
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from contract.files import first_line

DEFAULT_REGISTRY = "https://registry.npmjs.org"


class FetchError(Exception):
    """A package could not be fetched or did not match its integrity (the message is one line)."""


@dataclass(frozen=True)
class Package:
    """One pinned npm package version and its published ``dist.integrity`` (``sha512-<base64>``)."""

    name: str
    version: str
    integrity: str

    @property
    def filename(self) -> str:
        return f"{self.name.split('/')[-1]}-{self.version}.tgz"

    def url(self, registry: str = "") -> str:
        registry = (registry or os.environ.get("LATENTFORGE_NPM_REGISTRY") or DEFAULT_REGISTRY).rstrip("/")
        return f"{registry}/{self.name}/-/{self.filename}"


def cache_dir() -> Path:
    """``$LATENTFORGE_CACHE`` or ``~/.cache/latentforge``: where fetched packages are kept."""
    return Path(os.path.expanduser(os.environ.get("LATENTFORGE_CACHE", "~/.cache/latentforge")))


def integrity_of(path: Path) -> str:
    digest = hashlib.sha512()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return "sha512-" + base64.b64encode(digest.digest()).decode()


def tarball(package: Package, progress=None, timeout: float = 60.0) -> Path:
    """The package's tarball in the cache, downloaded once and checked against its integrity.

    A cached file is re-checked on every call (a changed file is fetched again). A download goes
    to ``<name>.partial`` and is renamed only once it matches; a failure removes it.

    Args:
        progress: called with (bytes so far, total bytes or 0) while downloading.

    Raises:
        FetchError: no network and no cached copy, an HTTP error, or an integrity mismatch.
    """
    folder = cache_dir() / "npm"
    path = folder / package.filename
    if path.is_file() and integrity_of(path) == package.integrity:
        return path
    folder.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + f".{os.getpid()}.partial")
    url = package.url()
    try:
        _download(url, partial, progress, timeout)
        actual = integrity_of(partial)
        if actual != package.integrity:
            raise FetchError(
                f"{url} does not match the published integrity of {package.name}@{package.version} "
                f"({actual[:24]}... instead of {package.integrity[:24]}...); try again, or check the registry"
            )
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


def _download(url: str, target: Path, progress, timeout: float) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(target, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            for block in iter(lambda: response.read(1 << 20), b""):
                out.write(block)
                done += len(block)
                if progress is not None:
                    progress(done, total)
    except (urllib.error.URLError, OSError, TimeoutError) as error:
        raise FetchError(f"cannot download {url} ({first_line(error, limit=120)})") from None
