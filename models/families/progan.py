"""Progressive growing of GANs (Karras et al. 2018): ``models/progan.py``'s growing networks and
WGAN-GP training, from 7x7 (sides 7 * 2**k) or 4x4 (4 * 2**k) up to the image side, with fade-ins
scheduled in images seen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from contract import signature
from models.registry import Family, ModelSpec, Options, option, register


@dataclass(frozen=True)
class ProganOptions(Options):
    """ProGAN's options: the length of each growth phase, the gradient penalty, the EMA."""

    applies_to: ClassVar[str] = "ProGAN"

    phase_kimg: float = option(
        60.0, "progan: thousands of images per growth phase (each fade-in, each stabilization)", low=0.001
    )
    gp_weight: float = option(10.0, "wgan-gp: gradient penalty weight (lambda)", low=0.0)
    ema: float = option(0.0, "decay of the generator's weight EMA, exported instead of G; 0 = off")

    def check(self, batch_size: int) -> None:
        if not 0.0 <= self.ema < 1.0:
            raise ValueError("ema must be in [0, 1); e.g. ema=0.999")


@register
class Progan(Family):
    name = "progan"
    order = 7
    summary = (
        "progressive growing of GANs, 7 -> 14 -> ... or 4 -> 8 -> ... up to 128, with fade-ins (Karras et al. 2018)"
    )
    description = (
        "progressive growing of GANs (Karras et al. 2018): 7x7 → 14x14 → 28x28 (sides 7·2^k up to 112) or "
        "4x4 → 8x8 → … (sides 4·2^k up to 128, e.g. five levels to 64x64), each new resolution faded"
        " in (alpha from 0 to 1) then stabilized; `width` channels at the image side, doubled per halving "
        "up to 4 × `width`; phases of `phase_kimg` thousand images (60); pixel "
        "norm, equalized learning rate, mini-batch std; WGAN-GP (`gp_weight` 10) plus drift 0.001·D(x)²; "
        "Adam β = (0, 0.99); generator EMA (`ema`, 0.999 for this family). `level` (0, 1, …), "
        "`resolution` (7, 14, 28 or 4, 8, …) and `alpha` are logged per epoch and the sample grids show the growth; "
        "alpha follows the images seen, which checkpoints carry, so a resumed run continues in the same "
        "phase at the same alpha"
    )
    options = ProganOptions
    value_range = "tanh"
    primary_metric = "fid"
    defaults: ClassVar[dict] = {"latent_dim": 128, "learning_rate": 1e-3, "width": 32}
    option_defaults: ClassVar[dict] = {"ema": 0.999}  # the paper's generator smoothing
    network_version = 1
    max_side = 128

    def build_model(self, spec: ModelSpec, options: ProganOptions, learning_rate):
        import keras

        from models import progan

        model = progan.ProGAN(
            spec.latent_dim,
            spec.image_shape,
            width=spec.width,
            phase_images=int(round(options.phase_kimg * 1000)),
            gp_weight=options.gp_weight,
            ema_decay=options.ema,
            seed=spec.seed,
        )
        model.compile(  # the paper's Adam: beta_1 0, beta_2 0.99, epsilon 1e-8
            d_optimizer=keras.optimizers.Adam(learning_rate, beta_1=0.0, beta_2=0.99, epsilon=1e-8),
            g_optimizer=keras.optimizers.Adam(learning_rate, beta_1=0.0, beta_2=0.99, epsilon=1e-8),
        )
        return model

    def signatures(self, spec: ModelSpec) -> dict:
        return {"generator": signature.generator(spec.latent_dim, spec.image_shape)}

    def export_networks(self, model) -> dict:
        return {"generator": model.exported_generator}
