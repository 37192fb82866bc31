"""The emoji dataset: Google's Noto emoji images from the npm package ``emoji-datasource-google``.

Reads: the package's tarball (fetched once with a plain HTTP GET and checked against its
published sha512 integrity; ``contract/npm.py``), its ``emoji.json`` (each image's name,
category, subcategory and skin-tone variations) and its 64x64 RGBA PNGs.

Writes: a labelled folder ready for ``-P dataset=DIR``: one subfolder per category
(``activities``, ``animals_nature``, ... 9 in all; the 5 "Component" swatches are left out),
skin-tone variants included (3,781 images), plus ``emoji-index.json`` (per image: name, code
points, the base emoji, skin tones, category, subcategory) and the package's licence. It is
written to a temporary folder renamed into place, so a failure leaves nothing behind; a finished
folder is reused.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tarfile
from pathlib import Path

from contract import npm
from pipeline.errors import UserError

PACKAGE = npm.Package(
    "emoji-datasource-google",
    "16.0.0",
    "sha512-ZRexfzs7MVoLnmzZmNsO4TKhnAJp5D++Vm6PpUpH/jEQQlemp3l88CjZ+DoZ2faM9R4QxZkOPJCoT8DlPhfQ3A==",
)
IMAGES = "package/img/google/64/"
LEFT_OUT = ("Component",)
INDEX = "emoji-index.json"


def category_folder(category: str) -> str:
    """``People & Body`` -> ``people_body``."""
    return re.sub(r"[^a-z0-9]+", "_", category.lower()).strip("_")


def index_entries(emoji: list[dict]) -> dict[str, dict]:
    """Image file name -> its description, for every image of every emoji outside LEFT_OUT:
    the emoji itself and each of its skin-tone variations."""
    entries: dict[str, dict] = {}
    for item in emoji:
        if item["category"] in LEFT_OUT or not item.get("has_img_google", True):
            continue
        common = {
            "name": item.get("name") or item["short_name"],
            "short_name": item["short_name"],
            "base": item["unified"],
            "category": item["category"],
            "subcategory": item["subcategory"],
        }
        entries[item["image"]] = {**common, "unified": item["unified"], "skin_tones": []}
        for tones, variant in (item.get("skin_variations") or {}).items():
            if variant.get("has_img_google", True):
                entries[variant["image"]] = {**common, "unified": variant["unified"], "skin_tones": tones.split("-")}
    return entries


def categories(folder: Path) -> list[str]:
    """The class folders of a written emoji folder."""
    return sorted(p.name for p in folder.iterdir() if p.is_dir())


def build(out: str, progress=None) -> tuple[Path, int, bool]:
    """Fetch (or reuse) the package and write the labelled folder ``out``.

    Returns:
        (the folder, its number of images, whether a finished folder was reused)

    Raises:
        UserError: the download failed with no cached copy, the tarball does not match, or
            ``out`` exists and is not a folder this command wrote.
    """
    target = Path(os.path.expanduser(out))
    marker = target / INDEX
    if marker.is_file():
        index = json.loads(marker.read_text())
        if index.get("package") == f"{PACKAGE.name}@{PACKAGE.version}":
            return target, len(index["images"]), True
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UserError(f"{out} exists and is not an emoji folder written by latentforge; pass a new --out")
    try:
        tarball = npm.tarball(PACKAGE, progress=progress)
    except npm.FetchError as error:
        raise UserError(f"{error}; the emoji dataset needs registry.npmjs.org once (then it is cached)") from None
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        count = _extract(tarball, partial)
        if target.exists():
            target.rmdir()  # empty, checked above
        os.replace(partial, target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target, count, False


def _extract(tarball: Path, folder: Path) -> int:
    """Write the images of ``tarball`` into ``folder``/<category>/ and the index; the image count."""
    with tarfile.open(tarball, "r:gz") as archive:
        emoji = json.load(archive.extractfile("package/emoji.json"))  # type: ignore[arg-type]
        licence = archive.extractfile("package/LICENSE").read()  # type: ignore[union-attr]
    entries = index_entries(emoji)
    folder.mkdir(parents=True)
    for category in {entry["category"] for entry in entries.values()}:
        (folder / category_folder(category)).mkdir()
    written = {}
    with tarfile.open(tarball, "r|gz") as archive:  # one streaming pass over the images
        for member in archive:
            name = member.name[len(IMAGES) :] if member.name.startswith(IMAGES) else ""
            if not member.isfile() or name not in entries:
                continue
            relative = f"{category_folder(entries[name]['category'])}/{name}"
            (folder / relative).write_bytes(archive.extractfile(member).read())  # type: ignore[union-attr]
            written[relative] = entries[name]
    missing = sorted(set(entries) - {Path(r).name for r in written})
    if missing:
        raise UserError(f"{tarball} lacks {len(missing)} images its emoji.json lists (first: {missing[0]})")
    (folder / "LICENSE").write_bytes(licence)
    index = {"package": f"{PACKAGE.name}@{PACKAGE.version}", "licence": "Apache-2.0 (images)", "images": written}
    (folder / INDEX).write_text(json.dumps(index, indent=1, sort_keys=True))
    return len(written)
