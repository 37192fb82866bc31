"""The one typed config of a pipeline run.

Built from MLproject parameters or CLI flags; every field is logged as an MLflow param.
Unknown model names, wrong types and out-of-range numbers are rejected before any work.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field, fields
from typing import Any

from models.registry import option  # a field with its help text (the CLI's and MLproject's)
from pipeline.errors import UserError
from pipeline.metrics import DEFAULT_METRICS

LR_SCHEDULES = ("constant", "cosine")
PRECISIONS = ("float32", "mixed_bfloat16")
DEFAULT_IDX_DIR = "/usr/share/datasets/fashion-mnist"  # where Debian's dataset-fashion-mnist puts the files
OPTIONS = "*options"  # in a list of field names: every family's options (see ``expand``)


@dataclass
class Config:
    """Everything a run depends on, but the family's own options, which live in ``options``
    (the family's typed ``Options``; read them as ``config.options.<name>`` or ``config.<name>``).
    Build it with ``Config.from_dict`` from flat names, as the CLI and MLproject do."""

    preset: str = option(
        "",
        "a named configuration (pipeline/presets.py); fields given too override it",
        doc="a named configuration ([Presets](#presets)); parameters given as well override it",
    )
    model: str = option(
        "dcgan",
        "the model family (models/families/); e.g. dcgan, vae",
        doc="{families} ([families](#model-families-and-gan-options)), with the options there",
    )
    dataset: str = option(
        "fashion_mnist",
        "a TFDS image dataset name, or a folder or .zip of images",
        doc=(
            "a TFDS image dataset with sides divisible by 4 (`mnist`, `cifar10`, … where they can be downloaded), "
            "or a folder or `.zip` of your own images ([Your own images](#your-own-images))"
        ),
    )
    dataset_name: str = option(
        "",
        "an image folder's name (models register as <name>-<model>); \"\" = the folder's name",
        doc="an image folder's name; models register as `<name>-<model>`; empty = the folder's name",
    )
    resolution: int = option(
        0,
        "image folders: side of the square images trained on; 0 = the images' own side when all share one",
        low=0,
        high=1024,
        doc="image folders: side N of the N × N images trained on; 0 = the images' own side when they all share one",
    )
    channels: int = option(
        0,
        "image folders: 1 (grey) or 3 (RGB); 0 = 3 when any image has colour",
        choices=(0, 1, 3),
        doc="image folders: 1 (grey) or 3 (RGB); 0 = 3 when any image has colour, else 1",
    )
    background: str = option(
        "white",
        "image folders: the colour transparent pixels are composited onto (a name or #rrggbb)",
        doc="image folders: the colour transparent pixels are composited onto: `white`, `black`, `grey` or `#rrggbb`",
    )
    xflip: bool = option(
        False,
        "train on the images and their mirror images (twice the examples)",
        doc="train on every image and its mirror image, twice the examples (StyleGAN2-ADA's `--mirror`)",
    )
    max_images: int = option(
        0,
        "image folders: prepare a seeded random subset of N images; 0 = all",
        low=0,
        doc="image folders: prepare a seeded random subset of N images; 0 = all",
    )
    test_fraction: float = option(
        0.05,
        "image folders: share of each class held out as the test split",
        low=0.0,
        high=0.5,
        doc=(
            "image folders: share of each class held out as the test split (seeded; at least one image of a "
            "class of two or more)"
        ),
    )
    epochs: int = option(
        2,
        "passes over the training data (or over steps_per_epoch batches)",
        low=1,
        doc="passes over the training data (or over `steps_per_epoch` batches)",
    )
    steps_per_epoch: int = option(
        0, "batches per epoch; 0 = one full pass over the data", low=0, doc="batches per epoch; 0 = one full pass"
    )
    batch_size: int = option(
        0,
        "global batch size (split across replicas under tf.distribute); 0 = the model's (DCGAN 32, others 64)",
        low=0,
        doc=(
            "global batch size (split across replicas under tf.distribute); 0 = the model's default "
            "({defaults:batch_size}; the DCGAN's: [why](results.md#choosing-the-default-dcgan-recipe))"
        ),
    )
    workers: int = option(
        1,
        "train on N worker processes (MultiWorkerMirroredStrategy, launched by Ray: the distributed extra)",
        low=1,
        doc=(
            "train on N worker processes launched by Ray ([Several workers](#several-workers)); not part of "
            "the train run's identity, so a rerun with another count resumes or reuses it"
        ),
    )
    latent_dim: int = option(
        0,
        "0 = the family's default (GANs 100, VAE and AE 32)",
        low=0,
        doc="0 = the model's default ({defaults:latent_dim})",
    )
    learning_rate: float = option(
        0.0,
        "0 = the family's default (DCGAN, cDCGAN, VAE, AE 1e-3; GAN 2e-4)",
        low=0.0,
        doc=(
            "0 = the model's default ({defaults:learning_rate}); the GANs train with Adam β1 = 0.5 (β2 = 0.9 "
            "for WGAN-GP), StyleGAN and ProGAN with Adam β = (0, 0.99), the VAE and AE with Adam. The DCGAN's "
            "1e-3: at equal training time 2e-3 scored worse and 5e-4 the same "
            "([results.md](results.md#choosing-the-default-dcgan-recipe))"
        ),
    )
    lr_schedule: str = option(
        "constant",
        "constant | cosine (decays to 5% of learning_rate over the run)",
        choices=LR_SCHEDULES,
        doc=(
            "`cosine`: decays the learning rate to 5% of its start over the run (resumes where it stopped; "
            "the rate is logged per epoch as `learning_rate`)"
        ),
    )
    width: int = option(
        0,
        "base channel count of the networks; 0 = the family's default (DCGAN 64, VAE 32)",
        doc=(
            "base channel count of the networks; 0 = the model's default ({defaults:width}); the fully "
            "connected GAN has none. The DCGAN's 48 (with 7x7 layers on the pixels) scored better than 64 at "
            "equal training time and steps faster ([results.md](results.md#choosing-the-default-dcgan-recipe))"
        ),
    )
    precision: str = option(
        "float32",
        "float32 | mixed_bfloat16 (families that allow it; only for GPUs or CPUs with AMX/AVX512-BF16)",
        choices=PRECISIONS,
        doc=(
            "`mixed_bfloat16` (VAE and AE only): bfloat16 compute, float32 weights, latents and logits; "
            "export and evaluate rebuild the model in float32. Only for GPUs and CPUs with AVX512-BF16 or "
            "AMX: elsewhere bfloat16 is emulated and much slower than float32 (train warns)"
        ),
    )
    seed: int = option(
        0,
        "seeds shuffling, weights, latents and sampling",
        low=0,
        below=2**32,
        doc="seeds shuffling, initialization, latents, sampling",
    )
    train_examples: int = option(
        0, "use only the first N training examples; 0 = all", low=0, doc="train on the first N examples only; 0 = all"
    )
    eval_samples: int = option(
        10000,
        "generated samples scored by the evaluate stage",
        low=2,
        high=100_000,
        doc="generated samples scored by `evaluate`",
    )
    metrics: str = option(
        ",".join(DEFAULT_METRICS),
        "evaluate's metrics, comma-separated",
        doc="the evaluate stage's metrics (names from `pipeline/metrics.py`)",
    )
    iwae_k: int = option(
        64,
        "VAE: importance samples of the likelihood bound (the literature's protocol: 5000)",
        low=1,
        doc=(
            "importance samples of the VAE's likelihood bound (the literature's protocol is 5000; the cost "
            "grows with `iwae_k` × images)"
        ),
    )
    iwae_examples: int = option(
        0,
        "VAE: test images the IWAE bound averages over; 0 = all",
        low=0,
        doc="test images the IWAE bound averages over; 0 = all of the test split",
    )
    features_epochs: int = option(
        0,
        "epochs of the feature classifier (trained once per dataset); 0 = 3, or enough for 1000 steps",
        low=0,
        doc=(
            "epochs of the feature classifier (trained once per dataset and recipe); 0 = the standard "
            "recipe: 3 epochs, or on a small dataset as many as make 1,000 steps of 128 images (the emoji "
            "set: 35): a few dozen steps leave a less accurate classifier whose features crowd blurred and sharp "
            "images together; the features run logs sanity FIDs of blank and noise images"
        ),
    )
    features_examples: int = option(
        0,
        "training examples of the feature classifier; 0 = all",
        low=0,
        doc="training examples of the feature classifier; 0 = all",
    )
    data_dir: str = option(
        DEFAULT_IDX_DIR,
        "local IDX files used when TFDS cannot download",
        doc="the local IDX files used when TFDS cannot download",
    )
    tfds_dir: str = option(
        "",
        'TFDS data dir; "" = TFDS\'s default (~/tensorflow_datasets)',
        doc="TFDS data dir; empty = `~/tensorflow_datasets`",
    )
    promote_margin: float = option(
        0.0,
        "a challenger must beat the champion by more than this",
        low=0.0,
        doc="a challenger must beat the champion by more than this",
    )
    primary_metric: str = option(
        "",
        'the metric promotion compares; "" = the family\'s (GANs fid, VAE test_iwae_nll)',
        doc=(
            "the metric promotion compares; empty = the family's (`fid` for the DCGAN, `test_iwae_nll` for "
            "the VAE); any evaluate metric, with its direction (higher is better for precision, recall, "
            "density, coverage, class entropy, classes hit, classifier score)"
        ),
    )
    experiment: str = option("latentforge", "MLflow experiment name", doc="the MLflow experiment the runs go into")
    options: Any = field(default=None, metadata={"internal": True})  # the family's Options; None = its defaults

    def __post_init__(self) -> None:
        from models import registry

        self._check_types()
        try:
            family = registry.get(self.model)
            registry.check_fields(self)  # every field's bounds and choices, from its option()
        except ValueError as error:
            raise UserError(str(error)) from None
        if self.options is None:
            self.options = registry.make_options(family, {})
        if not isinstance(self.options, family.options):
            raise UserError(f"options must be {family.options.__name__} for {self.model}; build with Config.from_dict")
        self._check_relations(family)
        try:
            self.options.validate(self.batch_size or family.default_batch_size)
        except ValueError as error:
            raise UserError(str(error)) from None

    def _check_relations(self, family) -> None:
        """The rules a field's own bounds cannot say: what the family allows, the metric names,
        the dataset's name."""
        from models import registry
        from pipeline.metrics import METRICS

        if self.precision != "float32" and not family.mixed_precision:
            allowed = [n for n in registry.names() if registry.get(n).mixed_precision]
            raise UserError(
                f"precision={self.precision} is validated for {', '.join(allowed)} only, "
                f"not {self.model}; drop it or pass precision=float32"
            )
        if self.width < 0 or self.width % 2:
            raise UserError(f"width must be an even number >= 2 (or 0 for the default), got {self.width}")
        if self.width and not family.defaults["width"]:
            raise UserError(f"width applies to convolutional models, not {self.model}; drop it")
        unknown = [name for name in self.metric_names() if name not in METRICS]
        if unknown or not self.metric_names():
            raise UserError(f"unknown metric(s) {', '.join(unknown) or '(none given)'}; valid: {', '.join(METRICS)}")
        self._check_dataset()

    def _check_dataset(self) -> None:
        from pipeline import folders

        folder = folders.is_folder(self.dataset)
        if not folder and (
            not self.dataset
            or not self.dataset.replace("_", "").replace("/", "").replace(":", "").replace(".", "").isalnum()
        ):
            raise UserError(
                f"dataset '{self.dataset}' is neither a TFDS name (e.g. fashion_mnist, mnist) nor a path "
                "(e.g. ./my_images or images.zip)"
            )
        if self.dataset_name and not re.fullmatch(r"[a-z0-9][a-z0-9_]*", self.dataset_name):
            raise UserError(
                f"dataset_name '{self.dataset_name}' must be lowercase letters, digits and underscores; e.g. emoji"
            )
        try:
            folders.Recipe(background=self.background).rgb()
        except ValueError as error:
            raise UserError(str(error)) from None
        given = [n for n in ("dataset_name", "resolution", "channels", "max_images") if getattr(self, n)]
        if given and not folder:
            raise UserError(
                f"{', '.join(given)} apply to image folders, not the TFDS dataset {self.dataset}; drop them"
            )

    def _check_types(self) -> None:
        for f in fields(self):
            if f.metadata.get("internal"):
                continue
            setattr(self, f.name, _typed(f, getattr(self, f.name)))

    def __getattr__(self, name: str):
        # Only called when normal lookup fails: the family's options read as config fields.
        options = self.__dict__.get("options")
        if options is not None and name in {f.name for f in fields(options)}:
            return getattr(options, name)
        raise AttributeError(f"Config has no field '{name}'")

    # ---- derived values -------------------------------------------------------------------
    @property
    def dataset_id(self) -> str:
        """The dataset's name: the TFDS name, or an image folder's ``dataset_name`` (default: the folder's)."""
        from pipeline import folders

        if folders.is_folder(self.dataset):
            return self.dataset_name or folders.default_name(self.dataset)
        return self.dataset

    def recipe(self):
        """How an image folder is prepared (``folders.Recipe``)."""
        from pipeline import folders

        return folders.Recipe(self.resolution, self.channels, self.background, self.max_images, self.test_fraction)

    @property
    def family(self):
        from models import registry

        return registry.get(self.model)

    def metric_names(self) -> list[str]:
        return [name.strip() for name in self.metrics.split(",") if name.strip()]

    def option_names(self) -> list[str]:
        return [f.name for f in fields(self.options)]

    def resolved(self) -> Config:
        """A copy with the family's defaults filled in (latent_dim, learning_rate, width, batch_size, and
        options such as critic_steps)."""
        defaults = self.family.defaults
        return dataclasses.replace(
            self,
            latent_dim=self.latent_dim or defaults["latent_dim"],
            learning_rate=self.learning_rate or defaults["learning_rate"],
            width=self.width or defaults["width"],
            batch_size=self.batch_size or self.family.default_batch_size,
            options=self.options.resolved(),
        )

    def to_dict(self) -> dict:
        """Every field and every option of the family, flat (what is logged as MLflow params)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if not f.metadata.get("internal")}
        return {**out, **self.options.to_dict()}

    def key(self, *names: str) -> str:
        """A stable hash of the named fields (``OPTIONS``: the family's options; all fields when none are named)."""
        data = self.to_dict()
        wanted = [m for n in names for m in (self.option_names() if n == OPTIONS else [n])]
        chosen = {n: data[n] for n in (wanted or data)}
        return hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: dict) -> Config:
        """Build from flat names (strings from MLflow params and flags are converted).

        An empty string means "not given" (MLproject's defaults), so a preset's value or the
        field's default applies. Names that are options of the chosen family go into
        ``options``; options of other families are refused."""
        from models import registry
        from pipeline import presets

        known = {f.name: f for f in fields(cls) if not f.metadata.get("internal")}
        data = presets.apply({k: v for k, v in data.items() if v != "" and v is not None})
        owners = registry.option_owners()
        shadowing = sorted(set(owners) & set(known))
        if shadowing:
            holders = sorted({o for name in shadowing for o in owners[name]})
            raise UserError(
                f"option(s) {', '.join(shadowing)} of {', '.join(holders)} shadow config fields; rename them"
            )
        unknown = sorted(set(data) - set(known) - set(owners))
        if unknown:
            valid = [*known, *owners]
            raise UserError(f"unknown config field(s): {', '.join(unknown)}; valid: {', '.join(valid)}")
        values = {name: _typed(f, data[name]) for name, f in known.items() if name in data}
        model = values.get("model", known["model"].default)
        try:
            family = registry.get(model)
        except ValueError as error:
            raise UserError(str(error)) from None
        option_fields = {f.name: f for f in fields(family.options)}
        fields_by_name = registry.option_fields()
        # Another family's option at its default changes nothing (e.g. a config.json of a VAE run
        # that lists the GAN options); given any other value, it is refused.
        data = {
            name: value
            for name, value in data.items()
            if name not in owners
            or name in option_fields
            or _typed(fields_by_name[name], value) != fields_by_name[name].default
        }
        given = [name for name in data if name in owners]
        foreign = [name for name in given if name not in option_fields]
        if foreign:
            holders = sorted({o for name in foreign for o in owners[name]}, key=registry.names().index)
            group = getattr(registry.get(holders[0]).options, "applies_to", "")
            raise UserError(
                f"{', '.join(foreign)} apply to {group + ' ' if group else ''}models ({', '.join(holders)}), "
                f"not {model}; drop them"
            )
        options = {name: _typed(option_fields[name], data[name]) for name in given}
        return cls(**values, options=registry.make_options(family, options))


def expand(names) -> list[str]:
    """Field names with ``OPTIONS`` replaced by every family's option names."""
    from models import registry

    out: list[str] = []
    for name in names:
        out.extend(registry.option_owners() if name == OPTIONS else [name])
    return out


# Fields that decide what the train stage produces (and so which runs can be reused/resumed),
# with the family's options.
TRAIN_FIELDS = (
    "model",
    "dataset",
    "epochs",
    "steps_per_epoch",
    "batch_size",
    "latent_dim",
    "learning_rate",
    "lr_schedule",
    "width",
    "precision",
    "seed",
    "train_examples",
    OPTIONS,
)

# An image folder's fields, which join TRAIN_FIELDS for a folder (a TFDS run's key stays as it was);
# xflip joins them when set.
FOLDER_FIELDS = ("dataset_name", "resolution", "channels", "background", "max_images", "test_fraction")

_TYPES = {"int": int, "float": float, "str": str, "bool": bool}
_BOOLEANS = {"1": True, "true": True, "0": False, "false": False}


def _typed(f, value):
    """``value`` as ``f``'s type: strings (MLflow params, flags) are converted; numbers are
    checked (an int is a valid float; bools take 0/1 and true/false)."""
    type_name = f.type if isinstance(f.type, str) else f.type.__name__
    expected = _TYPES[type_name]
    if isinstance(value, str) and expected is not str:
        text = value.strip().lower()
        try:
            if expected is bool:
                return _BOOLEANS[text] if text in _BOOLEANS else _BOOLEANS[str(int(float(text)))]
            if expected is int:
                number = float(text)  # MLflow passes its "float" params as "2" or "2.0"
                if not number.is_integer():
                    raise ValueError(value)
                return int(number)
            return float(text)
        except (ValueError, KeyError):
            raise UserError(_type_error(f.name, type_name, repr(value))) from None
    if expected is bool:
        if value in (0, 1):  # also True/False
            return bool(value)
        raise UserError(_type_error(f.name, type_name, repr(value)))
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, expected) or isinstance(value, bool):
        raise UserError(_type_error(f.name, type_name, repr(value)))
    return value


def _type_error(name: str, type_name: str, shown: str) -> str:
    if type_name == "bool":
        return f"{name} must be 0 or 1 (or true/false), got {shown}"
    return f"{name} must be {type_name}, got {shown}"


def add_arguments(parser, only=None) -> None:
    """Add one --flag per config field (and family option) named in ``only`` (all when None)."""
    for name, f in parameter_fields(only).items():
        parser.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            type=str,
            default=None,
            help=f"{f.metadata.get('help', '')} (default: {_default_text(name, f)})".replace("%", "%%"),
        )  # argparse formats %


def _default_text(name: str, f) -> str:
    """A field's default, with the families that take another one: "ns; dcgan, cdcgan: hinge"."""
    from models import registry

    others: dict[str, list[str]] = {}
    for family in (registry.get(n) for n in registry.names()):
        if name in family.option_defaults and family.option_defaults[name] != f.default:
            others.setdefault(str(family.option_defaults[name]), []).append(family.name)
    return "; ".join([str(f.default)] + [f"{', '.join(names)}: {value}" for value, names in others.items()])


def parameter_fields(only=None) -> dict:
    """name -> dataclass field for the fields (and family options) named in ``only``."""
    from models import registry

    own = {f.name: f for f in fields(Config) if not f.metadata.get("internal")}
    everything = {**own, **registry.option_fields()}
    names = expand(only) if only is not None else list(everything)
    return {name: everything[name] for name in names}


def from_args(args, only=None) -> Config:
    given = {name: getattr(args, name) for name in parameter_fields(only) if getattr(args, name, None) is not None}
    return Config.from_dict(given)
