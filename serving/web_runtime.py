"""onnxruntime-web, the runtime the browser playground runs generators with, from its npm package
at a pinned version: fetched once with a plain HTTP GET and checked against the sha512 integrity
the registry publishes (``contract/npm.py``; no Node, no CDN), then only the files the page loads
are unpacked beside the cache: the WASM build's ES module (``ort.wasm.min.mjs``) and the one
WebAssembly binary it loads with its loader (``ort-wasm-simd-threaded``: SIMD, and threads when
the page is cross-origin isolated; the same binary runs one thread when it is not).

    runtime_files()          # {file name: path}, fetching and unpacking on first use
    runtime_files(fetch=False)   # only what is already here (FetchError otherwise)

Standard library only (the server and ``latentforge playground`` import it; so may ``bin/setup``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

from contract import npm

PACKAGE = npm.Package(
    "onnxruntime-web",
    "1.30.0",
    "sha512-q0y+JrrtukXSzsBWEMccVfqX25LRmosXHF+CaRJmg8pZClzcV7svNc4rKY3jL02Vb7QmRMDs1SigqR4CXAfKYQ==",
)
FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
MANIFEST = "manifest.json"  # {"package", "version", "integrity", "files": {name: sha256}}


def folder(package: npm.Package | None = None) -> Path:
    """Where the unpacked files of ``package`` (default ``PACKAGE``) live: ``<cache>/ort-web/<version>``."""
    package = package or PACKAGE
    return npm.cache_dir() / "ort-web" / package.version


def runtime_files(package: npm.Package | None = None, fetch: bool = True, progress=None) -> dict[str, Path]:
    """``FILES`` of ``package`` (default ``PACKAGE``), unpacked and checked: {name: path}.

    Files already unpacked are reused while they match the manifest written with them (a changed
    or missing file unpacks afresh). Otherwise the tarball comes from the cache or, with
    ``fetch``, the registry; the files are unpacked into a temporary folder and renamed into place,
    so a failure leaves nothing half-written.

    Raises:
        npm.FetchError: not here and ``fetch`` is off, no network and no cached tarball, an
            integrity mismatch, or a tarball without one of ``FILES``.
    """
    package = package or PACKAGE
    place = folder(package)
    if _intact(place, package):
        return {name: place / name for name in FILES}
    tarball = npm.cache_dir() / "npm" / package.filename
    if not fetch and not tarball.is_file():
        raise npm.FetchError(
            f"onnxruntime-web {package.version} is not in {place}; "
            "run bin/setup (it fetches it once from the npm registry)"
        )
    tarball = npm.tarball(package, progress=progress)
    place.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{package.version}-", dir=place.parent))
    try:
        _unpack(tarball, staging, package)
        shutil.rmtree(place, ignore_errors=True)
        os.replace(staging, place)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return {name: place / name for name in FILES}


def _unpack(tarball: Path, target: Path, package: npm.Package) -> None:
    """Copy ``package/dist/<name>`` of every ``FILES`` out of ``tarball`` and write the manifest."""
    digests = {}
    with tarfile.open(tarball, "r:gz") as archive:
        for name in FILES:
            try:
                member = archive.getmember(f"package/dist/{name}")
            except KeyError:
                raise npm.FetchError(
                    f"{package.name}@{package.version} holds no dist/{name}; pin a version that does"
                ) from None
            source = archive.extractfile(member)
            if source is None:
                raise npm.FetchError(f"{package.name}@{package.version}: dist/{name} is not a file")
            data = source.read()
            (target / name).write_bytes(data)
            digests[name] = hashlib.sha256(data).hexdigest()
    manifest = {"package": package.name, "version": package.version, "integrity": package.integrity, "files": digests}
    (target / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")


def _intact(place: Path, package: npm.Package) -> bool:
    """Whether ``place`` holds every file of ``package`` as its manifest records them."""
    try:
        manifest = json.loads((place / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    if manifest.get("integrity") != package.integrity or set(manifest.get("files", {})) != set(FILES):
        return False
    for name, digest in manifest["files"].items():
        path = place / name
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            return False
    return True
