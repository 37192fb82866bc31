"""Model families: the interface each implements, and the registry that finds them by name.

A family is one module under ``models/families/`` (or anywhere, e.g. a test) that subclasses
``Family`` and decorates it with ``@register``, the way StyleGAN2-ADA names a network by
``class_name`` + kwargs and ``pipeline/metrics.py`` registers metrics. It owns everything
particular to it: its typed ``options`` (a dataclass; fields carry their help text), how to
build its networks and compiled training model (``build``), what it exports and with which
signature (``exports``), its value range, primary metric and its direction, and any
evaluation (``evaluate``, given an ``EvaluationContext``). The stages and ``serving/`` ask the family (or the
model card it wrote); none of them branches on a family's name.

Family modules import Keras only inside their methods, so the registry (and the CLI that
lists every family's options) loads without TensorFlow.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from contract.signature import Signature

FAMILIES: dict[str, Family] = {}

DEFAULT_BATCH_SIZE = 64  # of a family whose defaults name none
MODEL_JSON = "model.json"  # a trained model's ModelSpec, beside its weights


def option(default, about: str, **checks):
    """A family option: a dataclass field with its help text (the CLI's and MLproject's).

    ``checks``: ``choices`` (allowed values), ``low``/``high`` (inclusive bounds), ``below``
    (exclusive upper bound); ``check_fields`` enforces them (``Options.validate``, ``Config``)."""
    return dataclasses.field(default=default, metadata={"help": about, **checks})


def check_fields(instance) -> None:
    """Enforce the checks every ``option`` field of the dataclass ``instance`` carries: its
    ``choices``, a finite float, ``low``/``high`` (inclusive) and ``below`` (exclusive).

    Raises:
        ValueError: one line naming the field, the value and what to pass instead.
    """
    for f in dataclasses.fields(instance):
        value, meta = getattr(instance, f.name), f.metadata
        if "choices" in meta and value not in meta["choices"]:
            raise ValueError(f"unknown {f.name} '{value}'; valid: {', '.join(map(str, meta['choices']))}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{f.name} must be a finite number, got {value}")
        if "low" in meta and value < meta["low"]:
            fix = "pass 0 for the default" if meta["low"] == 0 == f.default else f"pass {meta['low']} or more"
            raise ValueError(f"{f.name} must be >= {meta['low']}, got {value}; {fix}")
        if "high" in meta and value > meta["high"]:
            raise ValueError(f"{f.name} must be <= {meta['high']}, got {value}; pass {meta['high']} or less")
        if "below" in meta and value >= meta["below"]:
            raise ValueError(f"{f.name} must be < {meta['below']}, got {value}; pass less")


@dataclass(frozen=True)
class Options:
    """Base of a family's options: typed fields made with ``option``. Override ``check`` for
    rules that relate fields (raise ``ValueError`` with a message that names the fix)."""

    def check(self, batch_size: int) -> None:
        """Cross-field rules; ``batch_size`` is the run's global batch."""

    def check_replicas(self, replicas: int) -> None:
        """Raise ValueError when these options cannot train on ``replicas`` devices."""

    def resolved(self) -> Options:
        """A copy with "0 = the default" fields filled in."""
        return self

    def validate(self, batch_size: int) -> None:
        check_fields(self)
        self.check(batch_size)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class NoOptions(Options):
    """A family without options of its own."""


@dataclass(frozen=True)
class Export:
    """One network a family ships: ``stem`` names the files (``<stem>.onnx``,
    ``<stem>_savedmodel/``); the first export of a family is its generator (stem "generator")."""

    stem: str
    network: Any
    signature: Signature


@dataclass(frozen=True)
class ModelSpec:
    """What is needed to rebuild a trained model: the train stage writes it as ``model.json``,
    export and evaluate read it back (``read``)."""

    model: str
    latent_dim: int
    image_shape: tuple[int, int, int]
    value_range: str
    dataset: str
    dataset_version: str
    class_names: tuple[str, ...]
    options: dict
    learning_rate: float
    width: int
    lr_schedule: str = "constant"
    precision: str = "float32"  # of training; the saved weights are float32
    seed: int = 0
    binarized: bool = False
    network_version: int = 1  # the family's network layout (``Family.network_version``)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        out["image_shape"], out["class_names"] = list(self.image_shape), list(self.class_names)
        return out

    def write(self, folder: Path) -> None:
        """``model.json`` in ``folder``."""
        (Path(folder) / MODEL_JSON).write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def read(cls, folder: Path) -> ModelSpec:
        """The spec in ``folder``'s ``model.json``."""
        return cls.from_dict(json.loads((Path(folder) / MODEL_JSON).read_text()))

    @classmethod
    def from_dict(cls, data: dict) -> ModelSpec:
        """A spec from ``model.json``'s fields.

        Raises:
            ValueError: the file lacks fields this latentforge writes (an older version's file, whose
                networks it no longer builds); the message names the fix.
        """
        fields = {f.name: f for f in dataclasses.fields(cls)}
        missing = [name for name, f in fields.items() if f.default is dataclasses.MISSING and name not in data]
        missing += [name for name in ("network_version",) if name not in data]
        if missing:
            raise ValueError(
                f"model.json lacks {', '.join(missing)}: written by an older latentforge, whose networks this one "
                f"no longer builds; retrain it: latentforge train --model {data.get('model', '<model>')}"
            )
        values = {k: v for k, v in data.items() if k in fields}
        values["image_shape"] = tuple(values["image_shape"])
        values["class_names"] = tuple(values["class_names"])
        return cls(**values)


@dataclass(frozen=True)
class EvaluationContext:
    """What the evaluate stage hands a family's ``evaluate``: the shipped generator and the
    stage's measuring tools; the loaders load only when called.

    Attributes:
        runtime: ``serving.runtime.GeneratorRuntime`` over the exported ONNX (what ships).
        features: images in [0, 1] -> (features, logits) of the feature classifier.
        real: the test split's features.
        score: sample features -> {"fid", "precision", "recall"} against ``real`` (k = 3).
        sample_features: the features of the stage's own samples (default inputs, seeded by ``seed``).
        samples: how many samples a metric draws (``eval_samples``).
        seed: the seed of the stage's samples.
        load_model: () -> the trained training model (Keras).
        load_test_images: () -> the test split in [0, 1] (binarized when the family is).
        config: the run's config (read-only).
    """

    runtime: Any
    features: Callable
    real: Any
    score: Callable
    sample_features: Any
    samples: int
    seed: int
    load_model: Callable
    load_test_images: Callable
    config: Any

    @property
    def value_range(self) -> str:
        return self.runtime.card["value_range"]


@dataclass
class Evaluation:
    """A family's evaluation: metrics, pictures (name -> uint8 (H, W, C), logged as
    ``evaluation/<name>.png``) and tables (name -> JSON-able dict, ``evaluation/<name>.json``)."""

    metrics: dict = dataclasses.field(default_factory=dict)
    pictures: dict = dataclasses.field(default_factory=dict)
    tables: dict = dataclasses.field(default_factory=dict)


# Square image sides the families build: 7 * 2**k and 4 * 2**k from 28 to 128.
SIDES = (28, 32, 56, 64, 112, 128)


class Family:
    """A model family. Subclass it in one module, set the class attributes, implement
    ``build_model`` and ``exports`` (override the other methods where the family needs to),
    and decorate the class with ``@register``.

    Class attributes:
        name: the ``model`` value that picks it (``-P model=<name>``).
        summary: one line for help texts (and the README's family table).
        description: what it is, in Markdown, for docs/usage.md's family table (default: ``summary``).
        options: its options dataclass (subclass of ``Options``); ``NoOptions`` if none.
        value_range: "tanh" ([-1, 1]) or "unit" ([0, 1]): images in and out.
        primary_metric, higher_is_better: what promotion compares, and which way is better.
        labels: trains on (image, label) pairs; the dataset must have class labels.
        binarized: trains on dynamically binarized images (a Bernoulli likelihood's own data).
        validates: evaluates on the test split each epoch (``test_step``).
        mixed_precision: validated under ``precision=mixed_bfloat16``.
        defaults: ``latent_dim``, ``learning_rate`` and ``width`` (0 = the family has no width).
        network_version: the version of the family's network layout; bump it when a change to the
            networks would make older weights unloadable. ``build`` refuses another version's spec
            with the retrain command (one layout per family: a young project keeps no old ones).
    """

    name: ClassVar[str]
    order: ClassVar[int] = 100  # position in listings (help, errors, MLproject)
    summary: ClassVar[str] = ""
    description: ClassVar[str] = ""  # Markdown for the docs' family table; "" = the summary
    options: ClassVar[type[Options]] = NoOptions
    value_range: ClassVar[str] = "tanh"
    primary_metric: ClassVar[str] = "fid"
    higher_is_better: ClassVar[bool] = False
    labels: ClassVar[bool] = False
    binarized: ClassVar[bool] = False
    validates: ClassVar[bool] = False
    mixed_precision: ClassVar[bool] = False
    # latent_dim, learning_rate, width (0: none) and, optionally, batch_size (DEFAULT_BATCH_SIZE)
    defaults: ClassVar[dict] = {"latent_dim": 100, "learning_rate": 2e-4, "width": 0}
    # this family's own defaults for options it shares with others (the DCGAN's loss): the
    # option's meaning stays shared, its value when not given is the family's
    option_defaults: ClassVar[dict] = {}
    network_version: ClassVar[int] = 1
    max_side: ClassVar[int] = 64  # the largest of SIDES its networks build

    def is_binarized(self, options, image_shape) -> bool:
        """Whether it trains on binarized images with these (resolved) options and image shape
        (``binarized`` by default; override when it depends on them)."""
        return self.binarized

    def primary_metric_of(self, spec: ModelSpec) -> str:
        """The metric promotion compares for the model ``spec`` (``primary_metric`` by default)."""
        return self.primary_metric

    def sides(self) -> tuple[int, ...]:
        """The square image sides it builds (of ``SIDES``, up to ``max_side``); override to narrow."""
        return tuple(side for side in SIDES if side <= self.max_side)

    @property
    def default_batch_size(self) -> int:
        """The batch size a config that gives none trains at: ``defaults["batch_size"]``, else 64."""
        return int(self.defaults.get("batch_size", DEFAULT_BATCH_SIZE))

    def build_model(self, spec: ModelSpec, options: Any, learning_rate):
        """A compiled training model with freshly initialized networks (override).

        ``learning_rate`` is a number or a Keras schedule."""
        raise NotImplementedError

    def signatures(self, spec: ModelSpec) -> dict[str, Signature]:
        """The graphs it ships, by stem, generator first, each with its inputs' names, shapes, roles
        and defaults (override). No TensorFlow: the model card and the docs read them."""
        raise NotImplementedError

    def export_networks(self, model) -> dict:
        """The trained networks to ship, by the stems of ``signatures`` (override)."""
        raise NotImplementedError

    def exports(self, model, spec: ModelSpec) -> list[Export]:
        """The networks to ship, generator first, each with its signature."""
        networks = self.export_networks(model)
        return [Export(stem, networks[stem], found) for stem, found in self.signatures(spec).items()]

    def evaluate(self, context: EvaluationContext) -> Evaluation:
        """The family's own numbers and pictures, beside the common metrics the evaluate stage
        computes (e.g. the VAE's likelihood bounds, StyleGAN's truncation curve); none by default.
        Everything comes from ``context``; the stage logs what this returns."""
        return Evaluation()

    def card_extras(self, model, spec: ModelSpec) -> dict:
        """Family-specific facts a runtime needs, for the model card (e.g. StyleGAN's style layout
        and ``w_avg``); none by default. ``model`` is the trained training model."""
        return {}

    def protocol(self, config, card: dict) -> str:
        """What, beyond the common protocol, decides the family's numbers for the model of ``card``
        measured with ``config`` (e.g. ";iwae_k=64")."""
        return ""

    def build(self, spec: ModelSpec, learning_rate=None):
        """``build_model`` with the weight initialization seeded and the options typed."""
        import keras

        if spec.network_version != self.network_version:
            raise ValueError(
                f"this {self.name} was trained with network layout {spec.network_version}, which this latentforge "
                f"no longer builds (it builds layout {self.network_version}); retrain it: latentforge train "
                f"--model {self.name}"
            )
        keras.utils.set_random_seed(spec.seed)
        options = make_options(self, spec.options).resolved()
        model = self.build_model(spec, options, spec.learning_rate if learning_rate is None else learning_rate)
        model.build_optimizers()
        return model


def _meaning(f: dataclasses.Field) -> tuple:
    """What makes two families' options of one name the same option (the long ``doc`` is written
    once, by the first family that declares it)."""
    return f.type, f.default, {key: value for key, value in f.metadata.items() if key != "doc"}


def register(cls: type[Family]) -> type[Family]:
    """Class decorator: add a ``Family`` subclass to the registry under ``cls.name``.

    An option may be shared between families (the GAN families share ``GanOptions``); a name
    that another family uses with another type or default is refused."""
    if not getattr(cls, "name", ""):
        raise ValueError(f"{cls.__name__} needs a class attribute 'name'")
    for f in dataclasses.fields(cls.options):
        for other in FAMILIES.values():
            same = {g.name: g for g in dataclasses.fields(other.options)}.get(f.name)
            if other.name != cls.name and same is not None and _meaning(same) != _meaning(f):
                raise ValueError(f"{cls.name}: option '{f.name}' means something else to {other.name}; rename it")
    FAMILIES[cls.name] = cls()
    return cls


def unregister(name: str) -> None:
    """Remove a family (tests that register their own)."""
    FAMILIES.pop(name, None)


_discovered = False


def _discover() -> None:
    """Import every module of ``models/families`` once (each registers its family)."""
    global _discovered
    if not _discovered:
        _discovered = True
        from models import families

        for module in pkgutil.iter_modules(families.__path__):
            importlib.import_module(f"{families.__name__}.{module.name}")


def names() -> list[str]:
    """Registered family names, by ``order``."""
    _discover()
    return sorted(FAMILIES, key=lambda n: FAMILIES[n].order)


def get(name: str) -> Family:
    """The family registered as ``name``; ValueError naming the valid ones otherwise."""
    _discover()
    if name not in FAMILIES:
        raise ValueError(f"unknown model '{name}'; valid models: {', '.join(names())}")
    return FAMILIES[name]


def option_owners() -> dict[str, list[str]]:
    """Every family option's name -> the families that take it (in registration order)."""
    owners: dict[str, list[str]] = {}
    for family in (get(n) for n in names()):
        for f in dataclasses.fields(family.options):
            owners.setdefault(f.name, []).append(family.name)
    return owners


def option_fields() -> dict[str, dataclasses.Field]:
    """Every family option's dataclass field by name (one per name)."""
    fields: dict[str, dataclasses.Field] = {}
    for n in names():
        for f in dataclasses.fields(get(n).options):
            fields.setdefault(f.name, f)
    return fields


def make_options(family: Family, values: dict | None) -> Options:
    """``family.options`` from a dict of typed values; unknown names raise ValueError."""
    values = dict(values or {})
    known = {f.name for f in dataclasses.fields(family.options)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{', '.join(unknown)}: not options of {family.name}")
    return family.options(**{**family.option_defaults, **values})


def model_spec(
    kind: str,
    *,
    image_shape,
    latent_dim: int,
    learning_rate: float,
    seed: int,
    num_classes: int = 10,
    options: dict | None = None,
    width: int = 0,
    dataset: str = "",
    dataset_version: str = "",
    class_names=None,
    lr_schedule: str = "constant",
    precision: str = "float32",
) -> ModelSpec:
    """The ``ModelSpec`` of a new model of family ``kind`` (the one builder of specs: the train
    stage's, the tests' and the benchmarks'). Without a dataset's ``class_names`` the
    ``num_classes`` classes are named "0", "1", ...; ``width`` 0 = the family's default."""
    family = get(kind)
    return ModelSpec(
        model=kind,
        latent_dim=latent_dim,
        image_shape=tuple(image_shape),
        value_range=family.value_range,
        dataset=dataset,
        dataset_version=dataset_version,
        class_names=tuple(str(i) for i in range(num_classes)) if class_names is None else tuple(class_names),
        options=dict(options or {}),
        learning_rate=learning_rate,
        width=width or family.defaults["width"],
        lr_schedule=lr_schedule,
        precision=precision,
        seed=seed,
        binarized=family.is_binarized(make_options(family, dict(options or {})).resolved(), tuple(image_shape)),
        network_version=family.network_version,
    )


def build(kind: str, **spec):
    """A compiled training model of family ``kind`` with freshly initialized networks:
    ``get(kind).build(model_spec(kind, **spec))``."""
    return get(kind).build(model_spec(kind, **spec))
