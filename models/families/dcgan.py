"""DCGAN (Radford et al. 2015): ``models/dcgan.py``'s convolutional networks, GAN training."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from models.families.gan import GanFamily, GanOptions
from models.registry import ModelSpec, option, register


@dataclass(frozen=True)
class DcganOptions(GanOptions):
    """The GAN options plus the convolutions' kernel size."""

    # 3x3 hidden convolutions: TensorFlow's oneDNN kernels run them much faster on a CPU than
    # 4x4 or 5x5 ones (docs/results.md#training-speed); the two layers on pixels (G's last, D's
    # first) have one or three image channels, so 5x5 there costs little and was chosen by FID at equal
    # training time (docs/results.md#choosing-the-default-dcgan-recipe)
    kernel_size: int = option(
        3,
        "DCGAN: kernel size of G's transposed convolutions",
        choices=(3, 4, 5),
        doc=(
            "DCGAN and cDCGAN: kernel size of the generator's hidden transposed convolution, 3, 4 or 5. 4, "
            "divisible by the stride, avoids checkerboard artifacts (Odena et al. 2016), but on a CPU "
            "TensorFlow runs 3x3 transposed convolutions much faster "
            "([results.md](results.md#training-speed))"
        ),
    )
    d_kernel_size: int = option(
        3,
        "DCGAN: kernel size of D's convolutions",
        choices=(3, 4, 5),
        doc=(
            "DCGAN and cDCGAN: kernel size of the discriminator's hidden convolution, 3, 4 or 5. On a CPU "
            "TensorFlow runs 3x3 convolutions much faster than 4x4 or 5x5 ones of the same shape "
            "([results.md](results.md#training-speed))"
        ),
    )
    image_kernel_size: int = option(
        5,
        "DCGAN: kernel size of the layers on pixels (G's last, D's first)",
        choices=(3, 4, 5, 7),
        doc=(
            "DCGAN and cDCGAN: kernel size of the two layers on pixels (the generator's last transposed "
            "convolution, the discriminator's first convolution), 3, 4, 5 or 7. They have one or three image "
            "channels, so a larger kernel costs little ([results.md](results.md#training-speed): "
            "`dcgan+image_kernel_size=3`). At equal training time 3 scored worse than 5 and 7 better; at width 64 "
            "7 slowed the step below 1.5× the textbook peer's images/s at batch 64, so the DCGAN's default is 7 "
            "at width 48, which scored better than width 64 with 5 and steps faster "
            "([results.md](results.md#choosing-the-default-dcgan-recipe))"
        ),
    )


@register
class Dcgan(GanFamily):
    name = "dcgan"
    order = 1
    summary = "DCGAN (Radford et al. 2015): transposed convolutions + batch norm, strided-conv discriminator"
    description = "DCGAN (Radford et al. 2015): transposed convolutions + batch norm, strided-conv discriminator"
    options = DcganOptions
    # the layout's version (models/registry.py): 5 = G's last transposed convolution makes the image,
    # D's kernel is d_kernel_size, the two layers on pixels have image_kernel_size, and the training
    # model counts images_seen (4: without the count, so its saved weights lack that variable)
    network_version = 5
    max_side = 128
    # Chosen by FID at equal training time: batch 32 takes nearly twice the steps of batch 64 in
    # the same seconds on a CPU and scored better at the default run's time, though not at four
    # times it (docs/results.md#quality-at-equal-training-time); at learning rate 2e-3 the default
    # scored worse than at 1e-3, at 5e-4 the same (docs/results.md#choosing-the-default-dcgan-recipe).
    # Width 48 with 7x7 layers on the pixels: at equal training time it scored better than width 64
    # with 5x5 ones, and its step is faster (docs/results.md#choosing-the-default-dcgan-recipe).
    defaults: ClassVar[dict] = {"latent_dim": 100, "learning_rate": 1e-3, "width": 48, "batch_size": 32}
    # the hinge loss (Lim & Ye 2017; Miyato et al. 2018; D's outputs are scores, not probabilities)
    # scored better than the non-saturating one (same section)
    option_defaults: ClassVar[dict] = {"gan_loss": "hinge", "image_kernel_size": 7}

    def networks(self, spec: ModelSpec, options: DcganOptions):
        from models import dcgan

        classes = spec.num_classes if self.labels else 0
        return (
            dcgan.build_generator(
                spec.latent_dim,
                spec.image_shape,
                width=spec.width,
                num_classes=classes,
                kernel_size=options.kernel_size,
                image_kernel_size=options.image_kernel_size,
            ),
            dcgan.build_discriminator(
                spec.image_shape,
                width=spec.width,
                minibatch_std=options.minibatch_std,
                group_size=options.minibatch_std_group,
                num_classes=classes,
                kernel_size=options.d_kernel_size,
                image_kernel_size=options.image_kernel_size,
            ),
        )
