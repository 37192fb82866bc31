"""Conditional DCGAN (Mirza & Osindero 2014): the DCGAN networks with the class label in G and D."""

from __future__ import annotations

from models.families.dcgan import Dcgan
from models.registry import register


@register
class ConditionalDcgan(Dcgan):
    name = "cdcgan"
    order = 3
    summary = "conditional DCGAN (label in G and D)"
    labels = True
