"""Model families by name: how to build each from a config, and what each hands out."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import keras


@dataclass(frozen=True)
class Family:
    name: str
    value_range: str  # "tanh" ([-1, 1]) or "unit" ([0, 1]) for images in and out
    primary_metric: str  # the metric promotion compares (lower is better)
    binarized: bool = False  # trains on dynamically binarized images (a Bernoulli likelihood's own data)
    adversarial: bool = False  # a GAN: takes the GAN options (loss, replay, minibatch std, EMA, ...)
    conditional: bool = False  # the generator takes [z, label]
    encoder: bool = False  # has an encoder that is exported too (image -> latent)
    about: str = ""


FAMILIES = {
    "dcgan": Family("dcgan", "tanh", "fid", adversarial=True, about="DCGAN (Radford et al. 2015)"),
    "gan": Family("gan", "tanh", "fid", adversarial=True, about="fully connected GAN (Goodfellow et al. 2014)"),
    "cdcgan": Family(
        "cdcgan", "tanh", "fid", adversarial=True, conditional=True, about="conditional DCGAN (label in G and D)"
    ),
    "vae": Family("vae", "unit", "test_iwae_nll", binarized=True, encoder=True, about="VAE (Kingma & Welling 2013)"),
    "ae": Family("ae", "unit", "fid", encoder=True, about="convolutional autoencoder (deterministic)"),
}


@dataclass(frozen=True)
class GanOptions:
    """The GAN-training options of a config (see ``models.gan.GAN``)."""

    loss: str = "ns"
    critic_steps: int = 1
    gp_weight: float = 10.0
    label_smoothing: float = 0.0
    replay: int = 0  # replay buffer size; 0 = off
    replay_ratio: float = 0.5
    minibatch_std: bool = False
    ema: float = 0.0

    @classmethod
    def from_dict(cls, data: dict | None) -> GanOptions:
        data = data or {}
        return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})

    def to_dict(self) -> dict:
        return asdict(self)


def _gan_optimizers(learning_rate: float, loss: str):
    # WGAN-GP's Adam settings (Gulrajani et al. use beta_1 0, beta_2 0.9; Keras's example 0.5, 0.9).
    beta_2 = 0.9 if loss == "wgan-gp" else 0.999
    return {
        "d_optimizer": keras.optimizers.Adam(learning_rate, beta_1=0.5, beta_2=beta_2),
        "g_optimizer": keras.optimizers.Adam(learning_rate, beta_1=0.5, beta_2=beta_2),
    }


DCGAN_WIDTH = 64  # = pipeline.config.MODEL_DEFAULTS (kept apart: no TF import there)
VAE_WIDTH = 32


def build(
    kind: str,
    *,
    image_shape,
    latent_dim: int,
    learning_rate: float,
    seed: int,
    num_classes: int = 10,
    gan: GanOptions | dict | None = None,
    width: int = 0,
) -> keras.Model:
    """A compiled training model of the given family, with freshly initialized networks.

    ``learning_rate`` is a number or a Keras schedule; ``width`` is the networks' base channel
    count (0 = the family's default; the fully connected GAN has none)."""
    if kind not in FAMILIES:
        raise ValueError(f"unknown model kind {kind!r}; valid: {', '.join(FAMILIES)}")
    keras.utils.set_random_seed(seed)  # weight initialization
    image_shape = tuple(image_shape)
    if FAMILIES[kind].adversarial:
        from models import dcgan
        from models import gan as gan_module
        from models.layers import ReplayBuffer

        options = gan if isinstance(gan, GanOptions) else GanOptions.from_dict(gan)
        conditional = FAMILIES[kind].conditional
        if kind == "gan":
            generator = gan_module.build_mlp_generator(latent_dim, image_shape)
            discriminator = gan_module.build_mlp_discriminator(image_shape, minibatch_std=options.minibatch_std)
        else:
            classes = num_classes if conditional else 0
            width = width or DCGAN_WIDTH
            generator = dcgan.build_generator(latent_dim, image_shape, width=width, num_classes=classes)
            discriminator = dcgan.build_discriminator(
                image_shape, width=width, minibatch_std=options.minibatch_std, num_classes=classes
            )
        replay = ReplayBuffer(options.replay, image_shape, options.replay_ratio, seed=seed) if options.replay else None
        model = gan_module.GAN(
            generator,
            discriminator,
            latent_dim=latent_dim,
            loss=options.loss,
            critic_steps=options.critic_steps,
            gp_weight=options.gp_weight,
            label_smoothing=options.label_smoothing,
            replay=replay,
            ema_decay=options.ema,
            num_classes=num_classes if conditional else 0,
            seed=seed,
        )
        model.compile(**_gan_optimizers(learning_rate, options.loss))
        model.build_optimizers()
        return model
    if kind == "vae":
        from models import vae

        model = vae.VAE(
            # two convolutions per resolution and 512 hidden units: measured to reach a better
            # likelihood bound per CPU-second than the AE's single-conv networks (README, VAE)
            vae.build_encoder(image_shape, latent_dim, width or VAE_WIDTH, hidden=512, blocks=2),
            vae.build_decoder(latent_dim, image_shape, width or VAE_WIDTH, hidden=512, blocks=2),
            latent_dim=latent_dim,
            seed=seed,
        )
    else:  # ae
        from models import ae

        model = ae.AutoEncoder(
            ae.build_encoder(image_shape, latent_dim, width or VAE_WIDTH),
            ae.build_decoder(latent_dim, image_shape, width or VAE_WIDTH),
            latent_dim,
        )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate))
    model.build_optimizers()
    return model
