"""DCGAN (Radford et al. 2015): ``models/dcgan.py``'s convolutional networks, GAN training."""

from __future__ import annotations

from models.families.gan import GanFamily, GanOptions
from models.registry import ModelSpec, register


@register
class Dcgan(GanFamily):
    name = "dcgan"
    order = 1
    summary = "DCGAN (Radford et al. 2015)"
    network_version = 2  # 1: 4x4 kernels; 2: 3x3 kernels (``models.dcgan.KERNEL_SIZE``)

    def networks(self, spec: ModelSpec, options: GanOptions):
        from models import dcgan

        classes = spec.num_classes if self.labels else 0
        kernel = dcgan.KERNEL_SIZE if spec.network_version >= 2 else dcgan.LEGACY_KERNEL_SIZE
        return (
            dcgan.build_generator(
                spec.latent_dim, spec.image_shape, width=spec.width, num_classes=classes, kernel_size=kernel
            ),
            dcgan.build_discriminator(
                spec.image_shape,
                width=spec.width,
                minibatch_std=options.minibatch_std,
                num_classes=classes,
                kernel_size=kernel,
            ),
        )
