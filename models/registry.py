"""Model families by name: how to build each from a config, and what each hands out."""

from __future__ import annotations

from dataclasses import dataclass

import keras


@dataclass(frozen=True)
class Family:
    name: str
    value_range: str  # "tanh" ([-1, 1]) or "unit" ([0, 1]) for images in and out
    primary_metric: str  # the metric promotion compares (lower is better)
    binarized: bool = False  # trains on dynamically binarized images (a Bernoulli likelihood's own data)


FAMILIES = {
    "dcgan": Family("dcgan", "tanh", "fid"),
    "vae": Family("vae", "unit", "test_iwae_nll", binarized=True),
}


def build(kind: str, *, image_shape, latent_dim: int, learning_rate: float, seed: int) -> keras.Model:
    """A compiled training model of the given family, with freshly initialized networks."""
    keras.utils.set_random_seed(seed)  # weight initialization
    if kind == "dcgan":
        from models import dcgan

        model = dcgan.DCGAN(
            dcgan.build_generator(latent_dim, image_shape),
            dcgan.build_discriminator(image_shape),
            latent_dim=latent_dim,
            seed=seed,
        )
        model.compile(
            d_optimizer=keras.optimizers.Adam(learning_rate, beta_1=0.5),
            g_optimizer=keras.optimizers.Adam(learning_rate, beta_1=0.5),
        )
        model.build_optimizers()
        return model
    if kind == "vae":
        from models import vae

        model = vae.VAE(
            vae.build_encoder(image_shape, latent_dim),
            vae.build_decoder(latent_dim, image_shape),
            latent_dim=latent_dim,
            seed=seed,
        )
        model.compile(optimizer=keras.optimizers.Adam(learning_rate))
        model.build_optimizers()
        return model
    raise ValueError(f"unknown model kind {kind!r}; valid: {', '.join(FAMILIES)}")
