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
    # kernels; bench/train_speed.py), so the hidden layers are 3x3; the two layers on pixels (G's
    # last, D's first) are cheap (one image channel) and 5x5 there paid for itself. The defaults
    # (those kernels, hinge loss, no EMA, learning rate 1e-3) were chosen by FID at equal training
    # time (bench/equal_time.py, docs/results.md). Single runs, seed 0, 240 s, extractor cnn128-v4,
    # FID of the raw / EMA-0.999 generator: all 3x3 with ns 36.4 / 39.3 (EMA 0.99: 37.8), hinge
    # 33.3 / 36.9, lsgan 43.5 / 47.3; 5x5 on pixels with ns 30.0 / 32.9, with hinge 25.1 / 27.1;
    # 7x7 on pixels with ns 27.9 / 29.1, with hinge 22.1 (raw), but its step is slower and the
    # default run must finish in 10 minutes (bin/run took 10 min 18 s with 7x7 on a slow day);
    # G's refine stage of version 2 (3x3) 39.5; batch 128 at 2e-3 44.7; the peer DCGAN 82.7.
    # Earlier, with the EMA: learning rate 2e-4 70.4 (200 s), 5e-4 46.9, 1e-3 39.5.
    kernel_size: int = option(3, "DCGAN: kernel size of G's transposed convolutions", choices=(3, 4, 5))
    d_kernel_size: int = option(3, "DCGAN: kernel size of D's convolutions", choices=(3, 4, 5))
    image_kernel_size: int = option(
        5, "DCGAN: kernel size of the layers on pixels (G's last, D's first)", choices=(3, 4, 5, 7)
    )


@register
class Dcgan(GanFamily):
    name = "dcgan"
    order = 1
    summary = "DCGAN (Radford et al. 2015)"
    options = DcganOptions
    # 4: as 3, with image_kernel_size on the two layers that touch pixels;
    # 3: G's last transposed convolution makes the image, D's kernel is d_kernel_size;
    # 2: one kernel_size for both, G refines at full resolution; 1: as 2, always 4x4
    network_version = 4
    defaults: ClassVar[dict] = {"latent_dim": 100, "learning_rate": 1e-3, "width": 64}
    # the hinge loss (Lim & Ye 2017; Miyato et al. 2018): D's outputs are scores, not probabilities
    option_defaults: ClassVar[dict] = {"gan_loss": "hinge"}

    def networks(self, spec: ModelSpec, options: DcganOptions):
        from models import dcgan

        classes = spec.num_classes if self.labels else 0
        if spec.network_version >= 3:
            g_kernel, d_kernel, refine = options.kernel_size, options.d_kernel_size, False
        else:
            g_kernel = d_kernel = options.kernel_size if spec.network_version == 2 else LEGACY_KERNEL_SIZE
            refine = True
        g_image = options.image_kernel_size if spec.network_version >= 4 else g_kernel
        d_image = options.image_kernel_size if spec.network_version >= 4 else d_kernel
        return (
            dcgan.build_generator(
                spec.latent_dim,
                spec.image_shape,
                width=spec.width,
                num_classes=classes,
                kernel_size=g_kernel,
                refine=refine,
                image_kernel_size=g_image,
            ),
            dcgan.build_discriminator(
                spec.image_shape,
                width=spec.width,
                minibatch_std=options.minibatch_std,
                num_classes=classes,
                kernel_size=d_kernel,
                image_kernel_size=d_image,
            ),
        )
