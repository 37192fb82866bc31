"""The one typed config of a pipeline run.

Built from MLproject parameters or CLI flags; every field is logged as an MLflow param.
Unknown model names, wrong types and out-of-range numbers are rejected before any work.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field, fields

from pipeline.errors import UserError

MODELS = ("dcgan", "gan", "cdcgan", "vae", "ae")  # model kinds a config may name; see models/registry.py
LR_SCHEDULES = ("constant", "cosine")
PRECISIONS = ("float32", "mixed_bfloat16")
MIXED_PRECISION_MODELS = ("vae", "ae")  # the families validated under mixed_bfloat16
GAN_MODELS = ("dcgan", "gan", "cdcgan")
GAN_LOSSES = ("minimax", "ns", "lsgan", "hinge", "wgan-gp")  # = models.losses.LOSSES (no TF import here)

# Per-model defaults for fields whose config value 0 means "the model's default".
MODEL_DEFAULTS = {
    "dcgan": {"latent_dim": 100, "learning_rate": 2e-4, "width": 64},
    "gan": {"latent_dim": 100, "learning_rate": 2e-4, "width": 0},  # fully connected: no width
    "cdcgan": {"latent_dim": 100, "learning_rate": 2e-4, "width": 64},
    "vae": {"latent_dim": 32, "learning_rate": 1e-3, "width": 32},
    "ae": {"latent_dim": 32, "learning_rate": 1e-3, "width": 32},
}
WGAN_GP_CRITIC_STEPS = 5  # critic updates per generator update (Gulrajani et al. 2017)

DEFAULT_IDX_DIR = "/usr/share/datasets/fashion-mnist"  # where Debian's dataset-fashion-mnist puts the files


@dataclass
class Config:
    """Everything a run depends on. Field comments are the CLI's help."""

    preset: str = ""  # a named configuration (pipeline/presets.py); fields given too override it
    model: str = "dcgan"  # dcgan | gan | cdcgan | vae | ae
    dataset: str = "fashion_mnist"  # a TFDS image dataset name
    epochs: int = 2  # passes over the training data (or over steps_per_epoch batches)
    steps_per_epoch: int = 0  # batches per epoch; 0 = one full pass over the data
    batch_size: int = 64  # global batch size (split across replicas under tf.distribute)
    latent_dim: int = 0  # 0 = the model's default (GANs 100, VAE and AE 32)
    learning_rate: float = 0.0  # 0 = the model's default (GANs 2e-4, VAE and AE 1e-3)
    lr_schedule: str = "constant"  # constant | cosine (decays to 5% of learning_rate over the run)
    width: int = 0  # base channel count of the networks; 0 = the model's default (DCGAN 64, VAE 32)
    precision: str = "float32"  # float32 | mixed_bfloat16 (vae and ae: ~1.5-2x faster on CPUs with AMX/AVX512-BF16)
    seed: int = 0  # seeds shuffling, weights, latents and sampling
    gan_loss: str = "ns"  # GANs: minimax | ns (non-saturating) | lsgan | hinge | wgan-gp
    critic_steps: int = 0  # GANs: D updates per G update; 0 = 5 for wgan-gp, else 1
    gp_weight: float = 10.0  # wgan-gp: gradient penalty weight (lambda)
    label_smoothing: float = 0.0  # GANs: one-sided; the real target becomes 1 - s (minimax, ns, lsgan)
    replay: int = 0  # GANs: experience replay buffer size (old fakes); 0 = off
    replay_ratio: float = 0.5  # GANs: fraction of D's fake batch drawn from the replay buffer
    minibatch_std: int = 0  # GANs: 1 = mini-batch standard deviation layer in D
    ema: float = 0.0  # GANs: decay of the generator's weight EMA, exported instead of G; 0 = off
    train_examples: int = 0  # use only the first N training examples; 0 = all
    eval_samples: int = 10000  # generated samples scored by the evaluate stage
    metrics: str = "fid,fid_floor,kid_metric,pr,dc,classes"  # evaluate's metrics, comma-separated
    iwae_k: int = 64  # importance samples of the VAE's likelihood bound (the literature's protocol: 5000)
    iwae_examples: int = 0  # test images the IWAE bound averages over; 0 = all
    features_epochs: int = 4  # epochs of the feature classifier (trained once per dataset)
    features_examples: int = 0  # training examples of the feature classifier; 0 = all
    data_dir: str = DEFAULT_IDX_DIR  # local IDX files used when TFDS cannot download
    tfds_dir: str = ""  # TFDS data dir; "" = TFDS's default (~/tensorflow_datasets)
    promote_margin: float = 0.0  # a challenger must beat the champion by more than this
    primary_metric: str = (
        ""  # the metric promotion compares; "" = the family's (fid for GANs, test_iwae_nll for the VAE)
    )
    experiment: str = "latentforge"  # MLflow experiment name

    def __post_init__(self) -> None:
        self._check_types()
        if self.model not in MODELS:
            raise UserError(f"unknown model '{self.model}'; valid models: {', '.join(MODELS)}")
        self._check_gan_options()
        if self.lr_schedule not in LR_SCHEDULES:
            raise UserError(f"unknown lr_schedule '{self.lr_schedule}'; valid: {', '.join(LR_SCHEDULES)}")
        if self.precision not in PRECISIONS:
            raise UserError(f"unknown precision '{self.precision}'; valid: {', '.join(PRECISIONS)}")
        if self.precision != "float32" and self.model not in MIXED_PRECISION_MODELS:
            raise UserError(
                f"precision={self.precision} is validated for {', '.join(MIXED_PRECISION_MODELS)} only, "
                f"not {self.model}; drop it or pass precision=float32"
            )
        if self.width < 0 or self.width % 2:
            raise UserError(f"width must be an even number >= 2 (or 0 for the default), got {self.width}")
        if self.width and not MODEL_DEFAULTS[self.model]["width"]:
            raise UserError(f"width applies to convolutional models, not {self.model}; drop it")
        positive = {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "features_epochs": self.features_epochs,
            "iwae_k": self.iwae_k,
        }
        for name, value in positive.items():
            if value <= 0:
                raise UserError(f"{name} must be a positive integer, got {value}; pass {name}=1 or more")
        non_negative = {
            "steps_per_epoch": self.steps_per_epoch,
            "latent_dim": self.latent_dim,
            "learning_rate": self.learning_rate,
            "train_examples": self.train_examples,
            "features_examples": self.features_examples,
            "iwae_examples": self.iwae_examples,
            "promote_margin": self.promote_margin,
        }
        for name, value in non_negative.items():
            if value < 0:
                raise UserError(f"{name} must be >= 0, got {value}; pass 0 for the default")
        if not 2 <= self.eval_samples <= 100_000:
            raise UserError(f"eval_samples must be between 2 and 100000, got {self.eval_samples}")
        from pipeline.metrics import METRICS

        unknown = [name for name in self.metric_names() if name not in METRICS]
        if unknown or not self.metric_names():
            raise UserError(f"unknown metric(s) {', '.join(unknown) or '(none given)'}; valid: {', '.join(METRICS)}")
        if not 0 <= self.seed < 2**32:
            raise UserError(f"seed must be between 0 and 2**32 - 1, got {self.seed}")
        for name in ("learning_rate", "promote_margin"):
            if not math.isfinite(getattr(self, name)):
                raise UserError(f"{name} must be a finite number, got {getattr(self, name)}")
        if (
            not self.dataset
            or not self.dataset.replace("_", "").replace("/", "").replace(":", "").replace(".", "").isalnum()
        ):
            raise UserError(f"dataset name '{self.dataset}' is not a TFDS name; e.g. fashion_mnist, mnist, cifar10")

    def _check_gan_options(self) -> None:
        if self.gan_loss not in GAN_LOSSES:
            raise UserError(f"unknown gan_loss '{self.gan_loss}'; valid: {', '.join(GAN_LOSSES)}")
        given = [f.name for f in fields(self) if f.name in GAN_FIELDS and getattr(self, f.name) != f.default]
        if self.model not in GAN_MODELS and given:
            raise UserError(
                f"{', '.join(given)} apply to GAN models ({', '.join(GAN_MODELS)}), not {self.model}; drop them"
            )
        if self.critic_steps < 0 or self.replay < 0:
            raise UserError("critic_steps and replay must be >= 0; pass 0 for the default (off)")
        if self.minibatch_std not in (0, 1):
            raise UserError(f"minibatch_std must be 0 or 1, got {self.minibatch_std}")
        for name in ("label_smoothing", "replay_ratio", "ema", "gp_weight"):
            if not math.isfinite(getattr(self, name)):
                raise UserError(f"{name} must be a finite number, got {getattr(self, name)}")
        if not 0.0 <= self.label_smoothing < 1.0 or not 0.0 <= self.ema < 1.0:
            raise UserError("label_smoothing and ema must be in [0, 1); e.g. label_smoothing=0.1, ema=0.999")
        if not 0.0 <= self.replay_ratio <= 1.0:
            raise UserError(f"replay_ratio must be in [0, 1], got {self.replay_ratio}")
        if self.gp_weight < 0:
            raise UserError(f"gp_weight must be >= 0, got {self.gp_weight}")
        if self.label_smoothing and self.gan_loss not in ("minimax", "ns", "lsgan"):
            raise UserError(
                f"label_smoothing moves a real target; {self.gan_loss} has none; use gan_loss=ns, minimax or lsgan"
            )
        if self.replay and self.replay < self.batch_size:
            raise UserError(f"replay buffer ({self.replay}) must hold at least one batch ({self.batch_size})")

    def _check_types(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            expected = {"int": int, "float": float, "str": str}[str(f.type)]
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                setattr(self, f.name, float(value))
                continue
            if not isinstance(value, expected) or isinstance(value, bool):
                raise UserError(f"{f.name} must be {f.type}, got {value!r}")

    # ---- derived values -------------------------------------------------------------------
    def metric_names(self) -> list[str]:
        return [name.strip() for name in self.metrics.split(",") if name.strip()]

    def resolved(self) -> Config:
        """A copy with model defaults filled in (latent_dim, learning_rate, width, critic_steps)."""
        defaults = MODEL_DEFAULTS[self.model]
        critic_steps = self.critic_steps or (WGAN_GP_CRITIC_STEPS if self.gan_loss == "wgan-gp" else 1)
        return dataclasses.replace(
            self,
            latent_dim=self.latent_dim or defaults["latent_dim"],
            learning_rate=self.learning_rate or defaults["learning_rate"],
            width=self.width or defaults["width"],
            critic_steps=critic_steps if self.model in GAN_MODELS else 0,
        )

    def gan_options(self) -> dict:
        """The GAN options in the form ``models.registry.GanOptions`` takes (resolved config)."""
        return {
            "loss": self.gan_loss,
            "critic_steps": self.critic_steps,
            "gp_weight": self.gp_weight,
            "label_smoothing": self.label_smoothing,
            "replay": self.replay,
            "replay_ratio": self.replay_ratio,
            "minibatch_std": bool(self.minibatch_std),
            "ema": self.ema,
        }

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def key(self, *names: str) -> str:
        """A stable hash of the named fields (all fields when none are named)."""
        data = self.to_dict()
        chosen = {n: data[n] for n in (names or data)}
        return hashlib.sha256(json.dumps(chosen, sort_keys=True).encode()).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: dict) -> Config:
        """Build from a dict of raw values (strings from MLflow params are converted).

        An empty string means "not given" (MLproject's defaults), so a preset's value or the
        field's default applies."""
        from pipeline import presets

        known = {f.name: f for f in fields(cls)}
        data = presets.apply({k: v for k, v in data.items() if v != ""})
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise UserError(f"unknown config field(s): {', '.join(unknown)}; valid: {', '.join(known)}")
        converted = {}
        for name, value in data.items():
            converted[name] = _convert(name, str(known[name].type), value)
        return cls(**converted)


GAN_FIELDS = (
    "gan_loss",
    "critic_steps",
    "gp_weight",
    "label_smoothing",
    "replay",
    "replay_ratio",
    "minibatch_std",
    "ema",
)

# Fields that decide what the train stage produces (and so which runs can be reused/resumed).
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
    *GAN_FIELDS,
)


def _convert(name: str, type_name: str, value):
    if not isinstance(value, str):
        return value
    try:
        if type_name == "int":
            number = float(value)  # MLflow passes its "float" params as "2" or "2.0"
            if not number.is_integer():
                raise ValueError(value)
            return int(number)
        if type_name == "float":
            return float(value)
    except ValueError:
        raise UserError(f"{name} must be {type_name}, got '{value}'") from None
    return value


def add_arguments(parser, only: tuple[str, ...] | None = None) -> None:
    """Add one --flag per config field to an argparse parser."""
    source = _field_comments()
    for f in fields(Config):
        if only is not None and f.name not in only:
            continue
        default = f.default if f.default is not dataclasses.MISSING else field()
        parser.add_argument(
            "--" + f.name.replace("_", "-"),
            dest=f.name,
            type=str,
            default=None,
            help=f"{source.get(f.name, '')} (default: {default})",
        )


def from_args(args, only: tuple[str, ...] | None = None) -> Config:
    given = {
        f.name: getattr(args, f.name)
        for f in fields(Config)
        if (only is None or f.name in only) and getattr(args, f.name, None) is not None
    }
    return Config.from_dict(given)


def _field_comments() -> dict[str, str]:
    import inspect

    comments = {}
    for line in inspect.getsource(Config).splitlines():
        line = line.strip()
        if ":" in line and "#" in line and not line.startswith(("#", '"')):
            name = line.split(":", 1)[0].strip()
            comments[name] = line.split("#", 1)[1].strip()
    return comments
