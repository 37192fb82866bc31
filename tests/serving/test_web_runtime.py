"""onnxruntime-web for the playground (serving/web_runtime.py): fetched over real HTTP from a local
registry holding a small package of the real one's layout, checked against its integrity, and
only the files the page loads unpacked, once; a changed file unpacks afresh; offline the cache
serves; a bad tarball leaves nothing."""

from __future__ import annotations

import functools
import http.server
import io
import tarfile
import threading
from pathlib import Path

import pytest

from contract import npm
from serving import web_runtime
from tests.data.test_emoji import QuietHandler

CONTENT = {
    "ort.wasm.min.mjs": b"export const version = 'test';",
    "ort-wasm-simd-threaded.mjs": b"export default async function init() {}",
    "ort-wasm-simd-threaded.wasm": b"\0asm\1\0\0\0",
    "ort-wasm-simd-threaded.jsep.wasm": b"\0asm not needed",  # a variant the page never loads
}


def _tarball(path: Path, content: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in content.items():
            info = tarfile.TarInfo(f"package/dist/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


@pytest.fixture()
def registry(tmp_path, monkeypatch):
    """A local npm registry serving a small onnxruntime-web; yields (package, stop)."""
    served = tmp_path / "registry" / "onnxruntime-web" / "-"
    served.mkdir(parents=True)
    package = npm.Package("onnxruntime-web", "0.0.1-test", "")
    _tarball(served / package.filename, CONTENT)
    package = npm.Package(package.name, package.version, npm.integrity_of(served / package.filename))
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(tmp_path / "registry"))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("LATENTFORGE_NPM_REGISTRY", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("LATENTFORGE_CACHE", str(tmp_path / "cache"))

    def stop():
        server.shutdown()
        server.server_close()

    yield package, stop
    stop()


def test_only_the_files_the_page_loads_are_unpacked_once(registry, tmp_path):
    package, stop = registry
    with pytest.raises(npm.FetchError, match="run bin/setup"):
        web_runtime.runtime_files(package, fetch=False)  # nothing here yet, and not allowed to fetch
    files = web_runtime.runtime_files(package)
    assert sorted(files) == sorted(web_runtime.FILES)
    assert {name: path.read_bytes() for name, path in files.items()} == {n: CONTENT[n] for n in web_runtime.FILES}
    place = web_runtime.folder(package)
    assert sorted(p.name for p in place.iterdir()) == sorted([*web_runtime.FILES, web_runtime.MANIFEST])
    stop()  # offline from here on
    assert web_runtime.runtime_files(package, fetch=False) == files  # reused as they are
    files["ort.wasm.min.mjs"].write_bytes(b"tampered")
    again = web_runtime.runtime_files(package)  # unpacked afresh from the cached tarball
    assert again["ort.wasm.min.mjs"].read_bytes() == CONTENT["ort.wasm.min.mjs"]
    assert not [p for p in place.parent.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_a_tarball_that_does_not_match_or_lacks_a_file_leaves_nothing(registry, tmp_path):
    package, _ = registry
    wrong = npm.Package(package.name, package.version, "sha512-" + "A" * 86 + "==")
    with pytest.raises(npm.FetchError, match="does not match the published integrity"):
        web_runtime.runtime_files(wrong)
    assert not web_runtime.folder(wrong).exists()
    served = tmp_path / "registry" / "onnxruntime-web" / "-" / package.filename
    _tarball(served, {k: v for k, v in CONTENT.items() if k != "ort-wasm-simd-threaded.wasm"})
    short = npm.Package(package.name, package.version, npm.integrity_of(served))
    with pytest.raises(npm.FetchError, match="holds no dist/ort-wasm-simd-threaded.wasm"):
        web_runtime.runtime_files(short)
    assert not web_runtime.folder(short).exists()
    assert not [p for p in web_runtime.folder(short).parent.iterdir() if p.name.startswith(".")]


def test_the_pinned_package_is_the_one_the_page_needs():
    assert (web_runtime.PACKAGE.name, web_runtime.PACKAGE.version) == ("onnxruntime-web", "1.30.0")
    assert web_runtime.PACKAGE.integrity.startswith("sha512-") and len(web_runtime.PACKAGE.integrity) == 95


def test_a_server_started_offline_fetches_the_runtime_on_the_pages_first_request(registry, monkeypatch):
    from serving import playground

    package, _ = registry
    monkeypatch.setattr(web_runtime, "PACKAGE", package)
    site = playground.Site(holder=None)  # starts without a download: nothing is cached
    assert "web/ort/ort.wasm.min.mjs" not in site.page and "onnxruntime-web is missing" in site.problem
    assert site.page_file("web/sampler.js") is not None  # the page's own files serve; they fetch nothing
    assert not web_runtime.folder(package).exists()
    served = site.page_file("web/ort/ort.wasm.min.mjs")  # the page's first request for the runtime
    assert served is not None and served.read_bytes() == CONTENT["ort.wasm.min.mjs"]
    assert site.problem == "" and site.page_file("web/ort/ort-wasm-simd-threaded.wasm") is not None
    assert site.page_file("web/ort/../../secret") is None


def test_offline_a_failed_fetch_is_retried_once_a_minute_not_on_every_request(registry, monkeypatch, caplog):
    from serving import playground

    package, _ = registry
    wrong = npm.Package(package.name, package.version, "sha512-" + "A" * 86 + "==")
    monkeypatch.setattr(web_runtime, "PACKAGE", wrong)
    site = playground.Site(holder=None)
    caplog.clear()
    assert site.page_file("web/ort/ort.wasm.min.mjs") is None  # tried, and failed
    assert "onnxruntime-web is missing" in site.problem
    # why goes to the server's log; a client's 404 says only that it is missing
    assert "does not match the published integrity" in caplog.text and "integrity" not in site.problem
    monkeypatch.setattr(web_runtime, "PACKAGE", package)  # the registry would answer now...
    assert site.page_file("web/ort/ort.wasm.min.mjs") is None  # ...but the next try waits RETRY_S
    assert not web_runtime.folder(package).exists()
    site._fetched_at -= playground.RETRY_S  # a minute later
    assert site.page_file("web/ort/ort.wasm.min.mjs") is not None and site.problem == ""
