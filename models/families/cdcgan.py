"""Conditional DCGAN (Mirza & Osindero 2014): the DCGAN networks with the class label in G and D."""

from __future__ import annotations

from typing import ClassVar

from models.families.dcgan import Dcgan
from models.registry import register


@register
class ConditionalDcgan(Dcgan):
    name = "cdcgan"
    order = 3
    summary = "conditional DCGAN: the class label is an input of G and of D (projection, Miyato & Koyama 2018)"
    description = (
        "conditional DCGAN: the class label is a second generator input (embedded, joined to `z`); the "
        "discriminator sees it as an extra image channel and through a projection term (Miyato & Koyama "
        "2018)"
    )
    labels = True
    # the DCGAN's batch 32, width 48 and 7x7 pixel layers were screened on the DCGAN only: the cDCGAN
    # keeps the recipe it was measured with
    defaults: ClassVar[dict] = {**Dcgan.defaults, "width": 64, "batch_size": 64}
    option_defaults: ClassVar[dict] = {"gan_loss": "hinge"}
