"""DCGAN (Radford et al. 2015): ``models/dcgan.py``'s convolutional networks, GAN training."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from models.families.gan import GanFamily, GanOptions
from models.registry import ModelSpec, option, register

LEGACY_KERNEL_SIZE = 4  # model.json files of network_version 1 (before kernel_size) hold 4x4 networks


@dataclass(frozen=True)
class DcganOptions(GanOptions):
    """The GAN options plus the convolutions' kernel size."""

    # 3x3 convolutions train about 3x faster on a CPU than 4x4 or 5x5 ones (TensorFlow's oneDNN
    # kernels; bench/train_speed.py). The defaults (3x3 everywhere, the weight EMA on, learning rate
    # 1e-3) were chosen by FID at equal training time (bench/equal_time.py, docs/results.md): at
    # 240 s, seed 0, 3x3 + EMA scored FID 70.4 at learning rate 2e-4, 46.9 at 5e-4 and 39.5 at
    # 1e-3, the peer 82.7; without the EMA's warm-up a 0.999 EMA scored 157.5.
    kernel_size: int = option(3, "DCGAN: kernel size of G's transposed convolutions", choices=(3, 4, 5))
    d_kernel_size: int = option(3, "DCGAN: kernel size of D's convolutions", choices=(3, 4, 5))


@register
class Dcgan(GanFamily):
    name = "dcgan"
    order = 1
    summary = "DCGAN (Radford et al. 2015)"
    options = DcganOptions
    # 3: G's last transposed convolution makes the image, D's kernel is d_kernel_size;
    # 2: one kernel_size for both, G refines at full resolution; 1: as 2, always 4x4
    network_version = 3
    defaults: ClassVar[dict] = {"latent_dim": 100, "learning_rate": 1e-3, "width": 64}

    def networks(self, spec: ModelSpec, options: DcganOptions):
        from models import dcgan

        classes = spec.num_classes if self.labels else 0
        if spec.network_version >= 3:
            g_kernel, d_kernel, refine = options.kernel_size, options.d_kernel_size, False
        else:
            g_kernel = d_kernel = options.kernel_size if spec.network_version == 2 else LEGACY_KERNEL_SIZE
            refine = True
        return (
            dcgan.build_generator(
                spec.latent_dim,
                spec.image_shape,
                width=spec.width,
                num_classes=classes,
                kernel_size=g_kernel,
                refine=refine,
            ),
            dcgan.build_discriminator(
                spec.image_shape,
                width=spec.width,
                minibatch_std=options.minibatch_std,
                num_classes=classes,
                kernel_size=d_kernel,
            ),
        )
