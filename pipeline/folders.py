"""Image-folder datasets: a folder or ``.zip`` of one's own images, prepared once for training.

Reads: image files (PNG, JPEG, WebP, BMP; any size and mode) anywhere under a folder or in a zip,
with labels from one level of subfolders (``cats/a.png``, ``dogs/b.png``) or from a
``dataset.json`` in StyleGAN2-ADA's format (``{"labels": [["cats/a.png", 0], ...]}``); otherwise
unlabelled. Other files are ignored.

Writes: a prepared copy under ``<tfds dir>/image_folders/<name>/<key>/``: every image decoded,
converted (alpha composited onto a background colour, then grey or RGB), centre-cropped to a
square and resized with Lanczos to ``resolution``; stored as fixed-size uint8 records (``train.u8``,
``test.u8``: one H*W*C record per image, row-major, which ``tf.data.FixedLengthRecordDataset``
reads without decoding) beside their labels, source names and ``meta.json``. The key is a
digest of the source's names, labels and bytes and of the recipe, so unchanged files are reused
and a changed file prepares afresh. Files go to a temporary folder renamed into place at the end:
a failed or interrupted preparation leaves nothing behind.

Memory: the images stream through (decoded in two worker processes, a bounded window of chunks
in flight, written as they come), so peak memory does not grow with the number of images.
This module imports neither TensorFlow nor MLflow.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import warnings
import zipfile
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path, PurePosixPath

from contract.files import first_line, write_atomic
from pipeline.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
LABEL_FILE = "dataset.json"
FORMAT = 1  # of the prepared files; part of the key
MAX_BAD_FRACTION = 0.01  # undecodable files above this share fail the stage
SPLIT_SEED = 0  # the held-out split and the max_images subset are drawn with this seed
CHUNK = 128  # images per task sent to a decoding worker
WINDOW = 4  # chunks in flight per worker
COLOURS = {"white": (255, 255, 255), "black": (0, 0, 0), "grey": (128, 128, 128), "gray": (128, 128, 128)}


# Public image sets latentforge fetches itself (``latentforge datasets <name>``, or ``-P dataset=<name>``,
# which fetches it when missing) and prepares as image folders.
PUBLIC = ("emoji",)


# ---- the source --------------------------------------------------------------------------------
# a TFDS name: "mnist", "mnist:3.0.1", "emnist/balanced", "emnist/balanced:3.*.*"
TFDS_NAME = re.compile(r"^[a-z][a-z0-9_]*(/[A-Za-z0-9_.+-]+)?(:[0-9*]+(\.[0-9*]+)*)?$")


def looks_like_path(dataset: str) -> bool:
    """Whether ``dataset`` names a folder or zip (rather than a TFDS name such as ``mnist`` or
    ``emnist/balanced``). ``a/b`` is a TFDS ``name/config`` unless it exists on disk."""
    if dataset.startswith(("~", ".", "/")) or dataset.lower().endswith(".zip") or (os.sep != "/" and os.sep in dataset):
        return True
    if "/" not in dataset:
        return False
    return os.path.exists(dataset) or not TFDS_NAME.match(dataset)


def is_folder(dataset: str) -> bool:
    """Whether ``dataset`` is an image folder: a path, or one of the ``PUBLIC`` sets."""
    return looks_like_path(dataset) or dataset in PUBLIC


def default_name(path: str) -> str:
    """The dataset name a folder or zip gets by default: its base name, lowercased, with runs of
    other characters than letters and digits turned into one underscore (``My Emoji.zip`` -> ``my_emoji``)."""
    base = Path(os.path.expanduser(path.rstrip("/\\"))).name
    if base.lower().endswith(".zip"):
        base = base[:-4]
    return re.sub(r"[^a-z0-9]+", "_", base.lower()).strip("_") or "images"


@dataclass(frozen=True)
class Source:
    """The images of a folder or zip and their labels (not yet read)."""

    path: Path
    names: tuple[str, ...]  # relative POSIX paths, sorted
    labels: tuple[int, ...]  # one per name; empty = unlabelled
    class_names: tuple[str, ...]
    label_source: str  # "subfolders", "dataset.json" or "" (unlabelled)

    @property
    def is_zip(self) -> bool:
        return self.path.is_file()

    def read(self, name: str, archive: zipfile.ZipFile | None = None) -> bytes:
        if archive is not None:
            return archive.read(name)
        return (self.path / name).read_bytes()

    def archive(self) -> zipfile.ZipFile | None:
        return zipfile.ZipFile(self.path) if self.is_zip else None


def open_source(dataset: str) -> Source:
    """List the images of a folder or zip and find their labels.

    Raises:
        UserError: the path is missing, is neither a folder nor a zip, holds no image file, or its
            ``dataset.json`` is malformed or names files that are not there.
    """
    path = Path(os.path.expanduser(dataset))
    if not path.exists():
        raise UserError(f"dataset path {dataset} does not exist; pass a folder or .zip of images")
    if path.is_dir():
        files = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
        label_text = (path / LABEL_FILE).read_bytes() if (path / LABEL_FILE).is_file() else None
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            files = sorted(i.filename for i in archive.infolist() if not i.is_dir())
            label_text = archive.read(LABEL_FILE) if LABEL_FILE in files else None
    else:
        raise UserError(f"dataset path {dataset} is neither a folder nor a .zip; pass a folder or .zip of images")
    names = [n for n in files if _is_image_name(n)]
    if not names:
        raise UserError(
            f"{dataset} holds no image file ({', '.join(IMAGE_SUFFIXES)}); pass a folder or .zip with images in it"
        )
    if label_text is not None:
        listed, labels, class_names = _labels_from_file(label_text, names, dataset)
        return Source(path, listed, labels, class_names, LABEL_FILE if labels else "")
    labels, class_names = _labels_from_folders(names)
    return Source(path, tuple(names), labels, class_names, "subfolders" if labels else "")


def _is_image_name(name: str) -> bool:
    parts = PurePosixPath(name).parts
    hidden = any(part.startswith(".") or part == "__MACOSX" for part in parts)
    return not hidden and name.lower().endswith(IMAGE_SUFFIXES)


def _labels_from_folders(names: list[str]) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """Labels from one level of subfolders: every image sits in a subfolder of the top, and there
    are at least two; otherwise none."""
    folders = [PurePosixPath(n).parts for n in names]
    if any(len(parts) != 2 for parts in folders):
        return (), ()
    class_names = tuple(sorted({parts[0] for parts in folders}))
    if len(class_names) < 2:
        return (), ()
    index = {name: i for i, name in enumerate(class_names)}
    return tuple(index[parts[0]] for parts in folders), class_names


def _labels_from_file(text: bytes, names: list[str], dataset: str) -> tuple[tuple[str, ...], tuple, tuple]:
    """Labels from StyleGAN2-ADA's ``dataset.json``; ``"labels": null`` means unlabelled. An
    optional ``"class_names"`` list names the classes (else they are "0", "1", ...).

    Images the file does not list are left out; files it lists must exist."""
    where = f"{dataset}/{LABEL_FILE}"
    try:
        content = json.loads(text)
        pairs = content["labels"]
        table = {} if pairs is None else {str(p[0]).replace("\\", "/"): int(p[1]) for p in pairs}
    except (ValueError, KeyError, TypeError, IndexError) as error:
        raise UserError(
            f'{where} is not a label file ({first_line(error)}); write {{"labels": [["path", class], ...]}}'
        ) from None
    if not table:
        return tuple(names), (), ()
    missing = sorted(set(table) - set(names))
    if missing:
        raise UserError(
            f"{where} names {len(missing)} image(s) not in the dataset (first: {missing[0]}); fix the file or add them"
        )
    if min(table.values()) < 0:
        raise UserError(f"{where} has a negative class index; classes are 0, 1, ...")
    count = max(table.values()) + 1
    class_names = content.get("class_names") or [str(i) for i in range(count)]
    if len(class_names) < count:
        raise UserError(f"{where} names {len(class_names)} classes but uses {count}; list a name for each class")
    listed = tuple(n for n in names if n in table)
    return listed, tuple(table[n] for n in listed), tuple(map(str, class_names))


# ---- the recipe --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Recipe:
    """How a source is prepared; 0 means "from the images"."""

    resolution: int = 0  # side of the square output; 0 = the images' own (shorter) side when all share one size
    channels: int = 0  # 1 or 3; 0 = 3 when any image has colour, else 1
    background: str = "white"  # alpha is composited onto this colour: a name or #rrggbb
    max_images: int = 0  # a seeded random subset of this many images; 0 = all
    test_fraction: float = 0.05  # held out per class (at least one image of a class of two or more)

    def rgb(self) -> tuple[int, int, int]:
        """The background as an (r, g, b) triple (ValueError when it is neither a name nor #rrggbb)."""
        text = self.background.strip().lower()
        if text in COLOURS:
            return COLOURS[text]
        if re.fullmatch(r"#[0-9a-f]{6}", text):
            return tuple(int(text[i : i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]
        raise ValueError(f"background '{self.background}' is not a colour; use white, black, grey or #rrggbb")


@dataclass
class Survey:
    """What one pass over the source's bytes found: their digest, the images' sizes and whether
    any has colour, and the files that do not open as images."""

    digest: str = ""
    sizes: Counter = field(default_factory=Counter)  # (width, height) -> images
    colour: bool = False
    bad: dict[str, str] = field(default_factory=dict)  # name -> reason


COLOUR_MODES = ("RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV", "P", "PA")


def survey(source: Source) -> Survey:
    """Read every file once: the digest of names, labels and bytes, each image's header (size, mode;
    Pillow's decompression-bomb check happens here), and whether any image has colour (its mode
    is a colour mode and, decoded, its channels differ; decoding stops at the first such image).

    Raises:
        UserError: an image is a decompression bomb (more pixels than Pillow's limit).
    """
    from PIL import Image

    found = Survey()
    digest = hashlib.sha256(f"latentforge image folder {FORMAT}\n".encode())
    digest.update(json.dumps(source.class_names).encode())
    archive = source.archive()
    try:
        for index, name in enumerate(source.names):
            data = source.read(name, archive)
            label = source.labels[index] if source.labels else -1
            digest.update(f"{name}\0{label}\0{len(data)}\0".encode())
            digest.update(data)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("error", Image.DecompressionBombWarning)
                    with Image.open(io.BytesIO(data)) as image:
                        found.sizes[image.size] += 1
                        if not found.colour and image.mode in COLOUR_MODES:
                            found.colour = _has_colour(image)
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                raise UserError(
                    f"{name} in {source.path} is larger than Pillow's decompression-bomb limit "
                    f"({Image.MAX_IMAGE_PIXELS} pixels); remove it or shrink it"
                ) from None
            except Exception as error:  # Pillow raises many types for a file it cannot read
                found.bad[name] = first_line(error, limit=120)
    finally:
        if archive is not None:
            archive.close()
    found.digest = digest.hexdigest()
    return found


def _has_colour(image) -> bool:
    import numpy as np

    pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    return bool(np.abs(pixels[..., 0] - pixels[..., 1]).max() > 2 or np.abs(pixels[..., 1] - pixels[..., 2]).max() > 2)


def resolved_side(recipe: Recipe, found: Survey, where: str) -> int:
    """The output side: the recipe's, else the shorter side the images all share.

    Raises:
        UserError: no image opened, or the images have several sizes and no resolution was given.
    """
    if not found.sizes:
        raise UserError(f"no file in {where} decodes as an image ({len(found.bad)} tried); check the files")
    if recipe.resolution:
        return recipe.resolution
    if len(found.sizes) > 1:
        common = ", ".join(f"{w}x{h}" for (w, h), _ in found.sizes.most_common(3))
        raise UserError(
            f"the images in {where} have {len(found.sizes)} sizes (e.g. {common}); "
            "pass -P resolution=N to centre-crop and resize them all to N x N"
        )
    width, height = next(iter(found.sizes))
    return min(width, height)


# ---- decoding (in worker processes) ---------------------------------------------------------------
def decode(data: bytes, side: int, channels: int, background: tuple[int, int, int]):
    """One image file's bytes -> uint8 (side, side, channels): EXIF orientation applied, alpha (or
    a palette's transparency) composited onto ``background``, converted to grey (ITU-R 601 luma)
    or RGB, centre-cropped to a square, resized with Lanczos."""
    import numpy as np
    from PIL import Image, ImageOps

    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened)
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):  # 16-bit or float grey: scale to 8 bits
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode != "F" or values.max() > 1 else 1.0
        image = Image.fromarray(np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (*background, 255))
        image = Image.alpha_composite(flat, rgba)
    image = image.convert("L" if channels == 1 else "RGB")
    width, height = image.size
    crop = min(width, height)
    left, top = (width - crop) // 2, (height - crop) // 2
    image = image.crop((left, top, left + crop, top + crop))
    if crop != side:
        image = image.resize((side, side), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8).reshape(side, side, channels)


def decode_chunk(path: str, names: list[str], side: int, channels: int, background: tuple[int, int, int]):
    """Decode ``names`` of the folder or zip at ``path``: a list of (record bytes, "") or (b"", reason)."""
    source = Source(Path(path), (), (), (), "")
    archive = source.archive()
    out = []
    try:
        for name in names:
            try:
                out.append((decode(source.read(name, archive), side, channels, background).tobytes(), ""))
            except Exception as error:  # a file that opened but does not decode: skipped and named
                out.append((b"", first_line(error, limit=120)))
    finally:
        if archive is not None:
            archive.close()
    return out


def _decoded(source: Source, names: list[str], side: int, channels: int, background):
    """Yield (name, record bytes or b"", reason) in order, decoding in two worker processes (spawned:
    they import numpy and Pillow only) with a bounded window of chunks in flight."""
    chunks = [names[i : i + CHUNK] for i in range(0, len(names), CHUNK)]
    args = (str(source.path), side, channels, background)
    if len(chunks) <= 1:
        for chunk in chunks:
            yield from zip(chunk, *zip(*decode_chunk(args[0], chunk, *args[1:])))
        return
    workers = max(1, min(2, os.cpu_count() or 1))
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        pending = []
        for chunk in chunks:
            pending.append((chunk, pool.submit(decode_chunk, args[0], chunk, *args[1:])))
            if len(pending) >= WINDOW * workers:
                chunk_done, future = pending.pop(0)
                yield from zip(chunk_done, *zip(*future.result()))
        for chunk_done, future in pending:
            yield from zip(chunk_done, *zip(*future.result()))


# ---- selection and split ---------------------------------------------------------------------------
def split_indices(labels: list[int], fraction: float, seed: int = SPLIT_SEED) -> set[int]:
    """The held-out test positions: per class (or over all when unlabelled), a seeded random
    ``fraction`` of its images, rounded, at least one of a class of two or more, never all."""
    import numpy as np

    rng = np.random.default_rng(seed)
    by_class: dict[int, list[int]] = {}
    for position, label in enumerate(labels):
        by_class.setdefault(label, []).append(position)
    test: set[int] = set()
    for label in sorted(by_class):
        members = by_class[label]
        count = round(len(members) * fraction)
        if fraction > 0 and len(members) >= 2:
            count = min(max(count, 1), len(members) - 1)
        test.update(members[i] for i in rng.permutation(len(members))[:count])
    return test


def selected(source: Source, found: Survey, max_images: int) -> list[int]:
    """Positions of the images to prepare: those that opened, or a seeded random subset of
    ``max_images`` of them, in source order."""
    import numpy as np

    good = [i for i, name in enumerate(source.names) if name not in found.bad]
    if max_images and max_images < len(good):
        keep = np.random.default_rng(SPLIT_SEED).permutation(len(good))[:max_images]
        good = [good[i] for i in sorted(keep)]
    return good


# ---- preparing -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Prepared:
    """A prepared image folder: where it is and what ``meta.json`` says."""

    location: Path
    meta: dict

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.meta["image_shape"])  # type: ignore[return-value]

    def images(self, split: str):
        """The split's images as a read-only uint8 memmap (n, h, w, c); labels via ``labels``."""
        import numpy as np

        count = self.meta["splits"][split]
        if not count:
            return np.zeros((0, *self.image_shape), dtype=np.uint8)
        return np.memmap(self.location / f"{split}.u8", dtype=np.uint8, mode="r", shape=(count, *self.image_shape))

    def labels(self, split: str):
        import numpy as np

        return np.load(self.location / f"{split}-labels.npy")

    def names(self, split: str) -> list[str]:
        return json.loads((self.location / f"{split}-names.json").read_text())


def root_of(data_dir: str) -> Path:
    """Where prepared image folders live: ``<data dir>/image_folders``."""
    return Path(data_dir) / "image_folders"


def _say(line: str) -> None:
    print(line, flush=True)


def prepare(
    dataset: str,
    recipe: Recipe,
    data_dir: str,
    name: str = "",
    check=None,
    log=_say,
    require_test: bool = False,
) -> tuple[Prepared, bool]:
    """Prepare the folder or zip ``dataset`` with ``recipe`` under ``data_dir`` (once: an unchanged
    source and recipe reuse the prepared copy).

    Args:
        check: called with the output side and whether the images have labels, before anything
            is written; raises UserError when the model to train cannot build that side or needs
            labels the images lack.
        log: where progress lines go.
        require_test: refuse (before anything is written) a recipe that holds out no test image;
            the pipeline's stages measure on the test split.

    Returns:
        (the prepared dataset, whether it was reused)

    Raises:
        UserError: see ``open_source``, ``survey`` and ``resolved_side``; a bad background;
            more than 1% of the files do not decode; an empty test split with ``require_test``.
    """
    name = name or default_name(dataset)
    try:
        background = recipe.rgb()
    except ValueError as error:
        raise UserError(str(error)) from None
    source = open_source(dataset)
    log(f"data: reading {len(source.names)} image files in {dataset}")
    found = survey(source)
    side = resolved_side(recipe, found, dataset)
    if check is not None:
        check(side, bool(source.labels))
    _check_bad(found.bad, len(source.names), dataset)
    if require_test and not _holds_out_any(source, found, recipe):
        _no_test(dataset, recipe)
    channels = recipe.channels or (3 if found.colour else 1)
    key = hashlib.sha256(f"{found.digest}\n{json.dumps(asdict(recipe), sort_keys=True)}".encode()).hexdigest()[:16]
    location = root_of(data_dir) / name / key
    if (location / "meta.json").is_file():
        prepared = load(location)
        if require_test and not prepared.meta["splits"].get("test"):
            _no_test(dataset, recipe)
        _point_latest(location)
        return prepared, True
    log(f"data: preparing {name} at {side}x{side}x{channels} in {location} (once)")
    meta = _meta(dataset, name, key, recipe, source, found, [side, side, channels])
    _write(source, found, meta, location, (side, channels, background), log, require_test)
    _point_latest(location)
    return load(location), False


def _holds_out_any(source: Source, found: Survey, recipe: Recipe) -> bool:
    """Whether ``recipe``'s seeded, stratified test split of the selected images holds any image."""
    positions = selected(source, found, recipe.max_images)
    return bool(split_indices([source.labels[i] if source.labels else 0 for i in positions], recipe.test_fraction))


def _meta(dataset: str, name: str, key: str, recipe: Recipe, source: Source, found: Survey, shape) -> dict:
    """The prepared folder's ``meta.json`` before its splits are written."""
    return {
        "format": FORMAT,
        "name": name,
        "key": key,
        "source": str(Path(os.path.expanduser(dataset)).resolve()),
        "source_sha256": found.digest,
        "recipe": asdict(recipe),
        "image_shape": list(shape),
        "class_names": list(source.class_names),
        "label_source": source.label_source,
        "files": len(source.names),
        "sizes": {f"{w}x{h}": n for (w, h), n in found.sizes.most_common(5)},
    }


def _check_bad(bad: dict[str, str], total: int, where: str) -> None:
    if len(bad) > MAX_BAD_FRACTION * total:
        first = next(iter(bad))
        raise UserError(
            f"{len(bad)} of {total} files in {where} do not decode as images (more than "
            f"{MAX_BAD_FRACTION:.0%}; first: {first}: {bad[first]}); remove or fix them"
        )


def _no_test(dataset: str, recipe: Recipe):
    raise UserError(
        f"{dataset}: test_fraction {recipe.test_fraction} holds out no test image (a class needs two or more "
        "images to give one); set test_fraction above 0 (default 0.05) or add images"
    )


def _write(source: Source, found: Survey, meta: dict, location: Path, shape, log, require_test: bool = False) -> None:
    """Decode and write the selected images into a temporary folder, then rename it into place."""
    import numpy as np

    positions = selected(source, found, meta["recipe"]["max_images"])
    labels = [source.labels[i] if source.labels else 0 for i in positions]
    test = split_indices(labels, meta["recipe"]["test_fraction"])
    temporary = location.parent / f".{location.name}.{os.getpid()}.partial"
    shutil.rmtree(temporary, ignore_errors=True)
    temporary.mkdir(parents=True)
    try:
        written: dict[str, tuple[list[int], list[str]]] = {"train": ([], []), "test": ([], [])}
        bad = dict(found.bad)
        with open(temporary / "train.u8", "wb") as train, open(temporary / "test.u8", "wb") as held_out:
            names = [source.names[i] for i in positions]
            for order, (name, record, reason) in enumerate(_decoded(source, names, *shape)):
                if reason:
                    bad[name] = reason
                    continue
                split = "test" if order in test else "train"
                (held_out if split == "test" else train).write(record)
                written[split][0].append(labels[order])
                written[split][1].append(name)
        _check_bad(bad, len(source.names), meta["source"])
        if require_test and not written["test"][1]:  # every held-out image failed to decode
            _no_test(meta["source"], Recipe(**meta["recipe"]))
        for split, (split_labels, split_names) in written.items():
            np.save(temporary / f"{split}-labels.npy", np.asarray(split_labels, dtype=np.int32))
            (temporary / f"{split}-names.json").write_text(json.dumps(split_names))
        meta["splits"] = {split: len(names) for split, (_, names) in written.items()}
        meta["skipped"] = bad
        (temporary / "meta.json").write_text(json.dumps(meta, indent=1))
        for name, reason in sorted(bad.items()):
            log(f"data: skipped {name}: {reason}")
        try:
            os.replace(temporary, location)
        except OSError:
            if not (location / "meta.json").is_file():
                raise
            # another process prepared the same source with the same recipe meanwhile: the same bytes; keep its copy
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
        # a first preparation that failed leaves no empty folder for the dataset's name (the folder
        # is not empty when other preparations of the name are there, or this one succeeded)
        with contextlib.suppress(OSError):
            location.parent.rmdir()


def _point_latest(location: Path) -> None:
    write_atomic(location.parent / "latest", location.name.encode())


def load(location: str | Path) -> Prepared:
    """The prepared image folder at ``location``."""
    location = Path(location)
    return Prepared(location, json.loads((location / "meta.json").read_text()))


def find(data_dir: str, name: str, key: str = "") -> Prepared | None:
    """The prepared image folder ``name`` (its ``key``, else the one prepared or reused last), or None."""
    folder = root_of(data_dir) / name
    if not key:
        latest = folder / "latest"
        if not latest.is_file():
            return None
        key = latest.read_text().strip()
    location = folder / key
    if not (location / "meta.json").is_file():
        return None
    return load(location)
