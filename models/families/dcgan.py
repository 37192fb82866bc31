"""DCGAN (Radford et al. 2015): ``models/dcgan.py``'s convolutional networks, GAN training."""

from __future__ import annotations

from models.families.gan import GanFamily, GanOptions
from models.registry import ModelSpec, register


@register
class Dcgan(GanFamily):
    name = "dcgan"
    order = 1
    summary = "DCGAN (Radford et al. 2015)"

    def networks(self, spec: ModelSpec, options: GanOptions):
        from models import dcgan

        classes = spec.num_classes if self.labels else 0
        return (
            dcgan.build_generator(spec.latent_dim, spec.image_shape, width=spec.width, num_classes=classes),
            dcgan.build_discriminator(
                spec.image_shape, width=spec.width, minibatch_std=options.minibatch_std, num_classes=classes
            ),
        )
