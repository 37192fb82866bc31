"""DCGAN (Radford et al. 2015): ``models/dcgan.py``'s convolutional networks, GAN training."""

from __future__ import annotations

from dataclasses import dataclass

from models.families.gan import GanFamily, GanOptions
from models.registry import ModelSpec, option, register

LEGACY_KERNEL_SIZE = 4  # model.json files of network_version 1 (before kernel_size) hold 4x4 networks


@dataclass(frozen=True)
class DcganOptions(GanOptions):
    """The GAN options plus the convolutions' kernel size."""

    # 3x3 convolutions train 2x faster on a CPU than 4x4 ones (TensorFlow's oneDNN kernels;
    # bench/train_speed.py), but after 2 epochs at seed 0 a 3x3 DCGAN scored FID 64.6 against
    # 45.9 for 4x4 (same evaluation protocol): the default stays 4 until a comparison at equal
    # training time says otherwise.
    kernel_size: int = option(4, "DCGAN: kernel size of every (transposed) convolution", choices=(3, 4, 5))


@register
class Dcgan(GanFamily):
    name = "dcgan"
    order = 1
    summary = "DCGAN (Radford et al. 2015)"
    options = DcganOptions
    network_version = 2  # 2: the kernel size is an option (1: always 4x4)

    def networks(self, spec: ModelSpec, options: DcganOptions):
        from models import dcgan

        classes = spec.num_classes if self.labels else 0
        kernel = options.kernel_size if spec.network_version >= 2 else LEGACY_KERNEL_SIZE
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
