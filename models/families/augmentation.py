"""The augmentation options the adversarial families share (``models/augment.py`` does the work)."""

from __future__ import annotations

from dataclasses import dataclass

from models.registry import Options, option

KINDS = ("none", "ada", "diffaugment")


@dataclass(frozen=True)
class AugmentOptions(Options):
    """Differentiable augmentation of what the discriminator sees (reals and fakes)."""

    augment: str = option(
        "none",
        "augment what D sees: ada (adaptive, Karras et al. 2020), diffaugment (Zhao et al. 2020) or none",
        choices=KINDS,
        doc=(
            "differentiable augmentation of every image the discriminator sees, reals and fakes, never of "
            "the exported generator's output: `ada` (adaptive discriminator augmentation, Karras et al. "
            "2020: the paper's blit, geometric and colour operations, each with a probability p that "
            "rises while D is too sure of the reals), `diffaugment` (Zhao et al. 2020: colour, translation "
            "and cutout on every image) or `none`. For small datasets "
            "([Your own images](#your-own-images))"
        ),
    )
    ada_target: float = option(
        0.6,
        "ada: the target of r_t = E[sign(D(real))]; p rises while r_t is above it",
        low=0.0,
        high=1.0,
        doc=(
            "`augment=ada`: the target of r_t = E[sign(D(real))], the paper's overfitting heuristic; p rises "
            "while r_t is above it and falls while below. The sign means something for `gan_loss` `ns`, "
            "`minimax` and `hinge` (and StyleGAN's loss); `ada` is refused with `lsgan` (targets 0 and 1) and "
            "`wgan-gp` (a critic's zero is arbitrary)"
        ),
    )
    ada_kimg: float = option(
        100.0,
        "ada: thousands of images over which p can move from 0 to 1",
        low=0.1,
        doc=(
            "`augment=ada`: how fast p adapts: in thousands of images, the least it takes p to move from 0 "
            "to 1 (the paper's 500 suits a GPU's millions of images; a CPU run sees far fewer)"
        ),
    )

    def make_augment(self):
        """The ``models.augment.Augment`` layer these options ask for, or None."""
        if self.augment == "none":
            return None
        from models.augment import Augment

        return Augment(self.augment, target=self.ada_target, speed_images=self.ada_kimg * 1000.0)
