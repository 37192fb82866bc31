"""``latentforge datasets emoji``: an npm tarball fetched over real HTTP (a local registry holding
a small package of the real one's layout), checked against its integrity, cached, and written as a
labelled folder that prepares as an image-folder dataset."""

from __future__ import annotations

import functools
import http.server
import io
import json
import tarfile
import threading
from pathlib import Path

import pytest
from PIL import Image

from contract import npm
from pipeline import cli, emoji, folders
from pipeline.errors import UserError

EMOJI = [
    {
        "name": "WAVING HAND SIGN",
        "short_name": "wave",
        "unified": "1F44B",
        "image": "1f44b.png",
        "category": "People & Body",
        "subcategory": "hand-fingers-open",
        "has_img_google": True,
        "skin_variations": {
            "1F3FB": {"unified": "1F44B-1F3FB", "image": "1f44b-1f3fb.png", "has_img_google": True},
            "1F3FF": {"unified": "1F44B-1F3FF", "image": "1f44b-1f3ff.png", "has_img_google": True},
        },
    },
    {
        "name": "GRINNING FACE",
        "short_name": "grinning",
        "unified": "1F600",
        "image": "1f600.png",
        "category": "Smileys & Emotion",
        "subcategory": "face-smiling",
        "has_img_google": True,
    },
    {
        "name": "EMOJI MODIFIER FITZPATRICK TYPE-1-2",
        "short_name": "skin-tone-2",
        "unified": "1F3FB",
        "image": "1f3fb.png",
        "category": "Component",
        "subcategory": "skin-tone",
        "has_img_google": True,
    },
]


def _tarball(path: Path) -> None:
    def add(archive, name, data):
        info = tarfile.TarInfo(name)
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))

    with tarfile.open(path, "w:gz") as archive:
        for number, image in enumerate(["1f44b.png", "1f44b-1f3fb.png", "1f44b-1f3ff.png", "1f600.png", "1f3fb.png"]):
            picture = io.BytesIO()
            Image.new("RGBA", (64, 64), (40 * number, 100, 200, 255)).save(picture, "PNG")
            add(archive, f"package/img/google/64/{image}", picture.getvalue())
        add(archive, "package/emoji.json", json.dumps(EMOJI).encode())
        add(archive, "package/LICENSE", b"The MIT License; images Apache-2.0")


@pytest.fixture()
def registry(tmp_path, monkeypatch):
    """A local npm registry over HTTP serving the small package; yields (package, stop)."""
    served = tmp_path / "registry" / "emoji-datasource-google" / "-"
    served.mkdir(parents=True)
    package = npm.Package("emoji-datasource-google", "0.0.1-test", "")
    _tarball(served / package.filename)
    package = npm.Package(package.name, package.version, npm.integrity_of(served / package.filename))
    handler = functools.partial(QuietHandler, directory=str(tmp_path / "registry"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("LATENTFORGE_NPM_REGISTRY", f"http://127.0.0.1:{server.server_address[1]}")
    monkeypatch.setenv("LATENTFORGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(emoji, "PACKAGE", package)

    def stop():
        server.shutdown()
        server.server_close()

    yield package, stop
    stop()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_writes_one_folder_per_category_without_components(registry, tmp_path):
    folder, count, reused = emoji.build(str(tmp_path / "emoji"))
    assert (count, reused) == (4, False)
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.png")) == [
        "people_body/1f44b-1f3fb.png",
        "people_body/1f44b-1f3ff.png",
        "people_body/1f44b.png",
        "smileys_emotion/1f600.png",
    ]
    index = json.loads((folder / emoji.INDEX).read_text())["images"]
    assert index["people_body/1f44b-1f3ff.png"]["base"] == "1F44B"
    assert index["people_body/1f44b-1f3ff.png"]["skin_tones"] == ["1F3FF"]
    prepared, _ = folders.prepare(str(folder), folders.Recipe(test_fraction=0.0), str(tmp_path / "d"), log=print)
    assert prepared.meta["class_names"] == ["people_body", "smileys_emotion"]
    assert prepared.image_shape == (64, 64, 3)


def test_a_rerun_reuses_the_folder_and_offline_the_cache(registry, tmp_path):
    _, stop = registry
    emoji.build(str(tmp_path / "emoji"))
    stop()  # offline from here on
    assert emoji.build(str(tmp_path / "emoji"))[2]  # the finished folder is reused
    folder, count, reused = emoji.build(str(tmp_path / "again"))  # a new folder, from the cached tarball
    assert (count, reused) == (4, False)


def test_a_tarball_that_does_not_match_its_integrity_leaves_nothing(registry, tmp_path, monkeypatch):
    package, _ = registry
    monkeypatch.setattr(emoji, "PACKAGE", npm.Package(package.name, package.version, "sha512-" + "A" * 86 + "=="))
    with pytest.raises(UserError, match="does not match the published integrity"):
        emoji.build(str(tmp_path / "emoji"))
    assert not (tmp_path / "emoji").exists()
    assert not list((tmp_path / "cache").rglob("*.tgz*"))


def test_offline_without_a_cache_is_one_line(registry, tmp_path):
    _, stop = registry
    stop()
    with pytest.raises(UserError, match=r"cannot download .*needs registry.npmjs.org once") as raised:
        emoji.build(str(tmp_path / "emoji"))
    assert "\n" not in str(raised.value)
    assert not (tmp_path / "emoji").exists()


def test_an_occupied_out_folder_is_refused(registry, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "photo.png").write_bytes(b"x")
    with pytest.raises(UserError, match="is not an emoji folder written by latentforge"):
        emoji.build(str(tmp_path / "mine"))
    assert (tmp_path / "mine" / "photo.png").read_bytes() == b"x"


def test_the_command(registry, tmp_path, capsys):
    assert cli.main(["datasets", "emoji", "--out", str(tmp_path / "emoji")]) == 0
    out = capsys.readouterr().out
    assert "4 emoji images in 2 classes written" in out
    assert f"bin/run -P dataset={tmp_path / 'emoji'}" in out


def test_dataset_emoji_is_fetched_into_the_cache_on_first_use_and_prepared(registry, store, tmp_path, capsys):
    import mlflow

    _, stop = registry
    argv = ["data", "--dataset", "emoji", "--tfds-dir", str(tmp_path / "data"), "--test-fraction", "0.5"]
    assert cli.main(argv) == 0  # -P dataset=emoji: no folder of that name here, so the public set
    assert len(list((tmp_path / "cache" / "datasets" / "emoji").rglob("*.png"))) == 4
    run = mlflow.search_runs(filter_string="tags.`latentforge.stage` = 'data'", output_format="list")[0]
    assert run.data.params["dataset.name"] == "emoji" and run.data.params["dataset.image_shape"] == "64x64x3"
    assert run.data.params["dataset.num_classes"] == "2"
    stop()  # offline: the second use needs nothing from the registry
    capsys.readouterr()
    assert cli.main(argv) == 0
    assert "already prepared" in capsys.readouterr().out
