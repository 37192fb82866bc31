"""StyleGAN (Karras et al. 2019, 2020), StyleGAN2-style and sized for 28x28 on a CPU: the
networks (``models/stylegan_networks.py``), the training step (``models/stylegan.py``) and the
evaluation (``models/stylegan_eval.py``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from contract import signature
from models import progressive
from models.families.augmentation import AugmentOptions
from models.registry import Evaluation, EvaluationContext, Family, ModelSpec, option, register

R1_INTERVAL = 16  # lazy R1: every 16th discriminator step (Karras et al. 2020)


@dataclass(frozen=True)
class StyleganOptions(AugmentOptions):
    """StyleGAN's options: the mapping network's depth, R1, style mixing and the generator EMA."""

    applies_to: ClassVar[str] = "StyleGAN"

    mapping_layers: int = option(2, "stylegan: dense layers of the mapping network z -> w", low=1, high=8)
    # 0.01: StyleGAN2-ADA's CIFAR-10 setting (32x32), the nearest published image size
    r1_gamma: float = option(0.01, "stylegan: R1 penalty weight on reals (lazy, every 16 D steps)", low=0.0)
    mixing_prob: float = option(0.9, "stylegan: probability that a fake mixes two latents' styles", low=0.0, high=1.0)
    ema_kimg: float = option(10.0, "stylegan: half-life of the generator EMA, in thousands of images", low=0.0)


W_SPREAD_SAMPLES = 10_000  # latents behind the card's w_spread (StyleGAN2's projector maps 10,000)


@register
class Stylegan(Family):
    name = "stylegan"
    order = 6
    summary = "StyleGAN2-style generator: mapping network, modulated convolutions, noise (Karras et al.)"
    description = (
        "StyleGAN2-style (Karras et al. 2019, 2020), its constant at 7x7 (sides 7·2^k: 7 → 14 → … → 112) or 4x4 "
        "(4·2^k: 4 → 8 → … → 128), a block per doubling up to the image side (`num_ws` and the noise inputs "
        "follow), `width` channels at the image side, doubled per halving up to 4 × `width`: mapping network `z → w` "
        "(learning-rate multiplier 0.01, running `w_avg`), per-layer styles into modulated and "
        "demodulated 3x3 convolutions (non-fused form), per-layer noise with a learned strength, skip "
        "to-image outputs summed and put through tanh (unlike StyleGAN: half of Fashion-MNIST's pixels "
        "sit at the minimum, which an unbounded output reaches only by exact cancellation); residual "
        "discriminator with mini-batch std; non-saturating loss, lazy R1 (every 16 D steps), style-mixing"
        " regularization, Adam β = (0, 0.99), generator EMA by half-life (exported). Options: "
        "`mapping_layers` (2), `r1_gamma` (0.01), `mixing_prob` (0.9), `ema_kimg` (10)"
    )
    options = StyleganOptions
    value_range = "tanh"
    primary_metric = "fid"
    # width 16 (channels 64, 32, 16 at 7, 14, 28), learning rate 2e-3 and the tanh output were
    # chosen in short equal-time runs on this project's CPU that are not kept as a benchmark; the
    # family at equal training time against the DCGAN and ProGAN, with the stylegan-fashion preset:
    # docs/results.md#dcgan-progressive-growing-and-stylegan-at-equal-training-time
    defaults: ClassVar[dict] = {"latent_dim": 128, "learning_rate": 2e-3, "width": 16}
    # the layout's version (models/registry.py): 2 = the synthesis output through tanh
    network_version = 2
    max_side = 128

    def build_model(self, spec: ModelSpec, options: StyleganOptions, learning_rate):
        import keras

        from models import stylegan

        model = stylegan.StyleGAN(
            spec.latent_dim,
            spec.image_shape,
            width=spec.width,
            mapping_layers=options.mapping_layers,
            r1_gamma=options.r1_gamma,
            r1_interval=R1_INTERVAL,
            mixing_prob=options.mixing_prob,
            ema_kimg=options.ema_kimg,
            seed=spec.seed,
            augment=options.make_augment(),
        )
        # Adam with beta_1 = 0, beta_2 = 0.99 (StyleGAN2); D's rate and beta_2 adjusted for lazy
        # regularization (c = interval / (interval + 1)), as in the paper's appendix B.
        c = R1_INTERVAL / (R1_INTERVAL + 1)
        d_rate = learning_rate * c if isinstance(learning_rate, (int, float)) else learning_rate
        model.compile(
            d_optimizer=keras.optimizers.Adam(d_rate, beta_1=0.0, beta_2=0.99**c, epsilon=1e-8),
            g_optimizer=keras.optimizers.Adam(learning_rate, beta_1=0.0, beta_2=0.99, epsilon=1e-8),
        )
        return model

    def signatures(self, spec: ModelSpec) -> dict:
        count, size = progressive.num_ws(spec.image_shape), progressive.noise_size(spec.image_shape)
        return {
            "generator": signature.styled_generator(spec.latent_dim, spec.image_shape, count, size, progressive.W_DIM),
            "synthesis": signature.synthesis(spec.image_shape, count, size, progressive.W_DIM),
        }

    def export_networks(self, model) -> dict:
        return {"generator": model.ema_generator, "synthesis": model.ema_synthesis}

    def card_extras(self, model, spec: ModelSpec) -> dict:
        import numpy as np

        from contract import images as image_tools

        w_avg = model.ema_generator.get_layer("w_average").w_avg.numpy()
        styles = progressive.style_layout(spec.image_shape, w_avg)
        # the projector's scale of w (StyleGAN2's w_std): sqrt(E|w - w_avg|^2) over W_SPREAD_SAMPLES
        # latents of the portable sampler (seed 0), mapped once here instead of at every projection
        latents = image_tools.latents(0, W_SPREAD_SAMPLES, spec.latent_dim)
        ws = model.ema_generator.get_layer("mapping").predict(latents, batch_size=1000, verbose=0)
        squares = np.sum(np.square(ws.astype(np.float64) - w_avg.astype(np.float64)), axis=1)
        styles["w_spread"] = float(np.sqrt(np.mean(squares)))
        styles["w_spread_samples"] = W_SPREAD_SAMPLES
        return {"styles": styles}

    def evaluate(self, context: EvaluationContext) -> Evaluation:
        """The truncation curve, the path length in W and the style pictures
        (``models/stylegan_eval.py``)."""
        from models import stylegan_eval

        return stylegan_eval.evaluate(context)
