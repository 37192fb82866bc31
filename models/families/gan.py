"""GAN families' shared part (options, training model, signature) and the fully connected GAN
(Goodfellow et al. 2014). ``dcgan`` and ``cdcgan`` subclass ``GanFamily`` with their networks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from contract import signature
from models.families.augmentation import AugmentOptions
from models.registry import Family, ModelSpec, option, register

# models/losses.py's LOSSES, named here so that the options stay TensorFlow-free (a test keeps them equal)
LOSSES = ("minimax", "ns", "lsgan", "hinge", "wgan-gp")
SMOOTHABLE = ("minimax", "ns", "lsgan")  # losses with a real target that label smoothing can move
WGAN_GP_CRITIC_STEPS = 5  # critic updates per generator update (Gulrajani et al. 2017)


@dataclass(frozen=True)
class GanOptions(AugmentOptions):
    """The GAN-training options (see ``models.gan.GAN``): the course's loss functions and its
    fixes for mode collapse and oscillation."""

    applies_to: ClassVar[str] = "GAN"

    gan_loss: str = option(
        "ns",
        "minimax | ns (non-saturating) | lsgan | hinge | wgan-gp",
        choices=LOSSES,
        doc=(
            "`minimax` (the saturating original), `ns` (non-saturating: fakes labelled 1 in G's phase), "
            "`lsgan` (least squares), `hinge`, `wgan-gp` (critic, gradient penalty with α ~ U(0, 1) and an ε "
            "inside the norm's square root); pure functions in `models/losses.py`. The DCGANs default to "
            "`hinge`: at equal training time it scored a lower FID than `ns` "
            "([results.md](results.md#choosing-the-default-dcgan-recipe)); with it `d_real` and `d_fake` are "
            "scores (0 at the equilibrium), not probabilities"
        ),
    )
    critic_steps: int = option(
        0,
        "D updates per G update; 0 = 5 for wgan-gp, else 1",
        low=0,
        doc="discriminator updates per generator update; 0 = 5 for `wgan-gp`, else 1",
    )
    gp_weight: float = option(10.0, "wgan-gp: gradient penalty weight (lambda)", low=0.0, doc="WGAN-GP's λ")
    label_smoothing: float = option(
        0.0,
        "one-sided; the real target becomes 1 - s (minimax, ns, lsgan)",
        doc="one-sided: the real target becomes 1 − s (for `minimax`, `ns`, `lsgan`)",
    )
    replay: int = option(
        0,
        "experience replay buffer size (old fakes); 0 = off",
        low=0,
        doc="experience replay: a ring buffer of this many old fakes (≥ one batch); 0 = off",
    )
    replay_ratio: float = option(
        0.5,
        "fraction of D's fake batch drawn from the replay buffer",
        low=0.0,
        high=1.0,
        doc="fraction of each discriminator fake batch drawn from the buffer once it holds enough",
    )
    minibatch_std: bool = option(
        False,
        "mini-batch standard deviation layer in D, over groups of minibatch_std_group examples (0/1, true/false)",
        doc=(
            "1 = a mini-batch standard deviation layer in the discriminator (Karras et al. 2018) over groups "
            "of `minibatch_std_group` consecutive examples, so a collapsed batch is easy to spot; the groups "
            "never straddle the real and the fake half, so the discriminator is still called once on both "
            "when the batch is a multiple of the group. Off in the DCGAN's default: on the second screen it scored "
            "no better than without ([results.md](results.md#choosing-the-default-dcgan-recipe))"
        ),
    )
    minibatch_std_group: int = option(
        4,
        "examples per mini-batch std group (the whole per-replica batch when it does not divide it)",
        choices=(2, 4, 8, 16, 32, 64),
        doc=(
            "examples per group of the mini-batch standard deviation: the papers' 4, or as many as the batch "
            "(32 at the DCGAN's batch of 32: one statistic over all the reals, one over all the fakes, still in "
            "one discriminator call); a per-replica batch it does not divide forms one group"
        ),
    )
    # off by default: at the default run's training time the EMA scored no better than the raw
    # weights (docs/results.md#choosing-the-default-dcgan-recipe): the generator still improves fast
    ema: float = option(
        0.0,
        "decay of the generator's weight EMA, exported instead of G; 0 = off",
        doc=(
            "decay of an exponential moving average of the generator's weights (0 = off), warmed up as "
            "TensorFlow's `ExponentialMovingAverage` does (decay min(ema, (1 + n) / (10 + n)) after n steps);"
            " when on, the EMA generator is what is exported, evaluated and served. Off by default: in the "
            "default run's training time the EMA scored no better than the raw weights "
            "([results.md](results.md#choosing-the-default-dcgan-recipe)); it pays off in long runs"
        ),
    )
    d_lr_ratio: float = option(
        1.0,
        "TTUR (Heusel et al. 2017): D's learning rate as a multiple of G's; 1 = the same",
        low=0.0,
        high=100.0,
        doc=(
            "TTUR (Heusel et al. 2017): the discriminator's learning rate as a multiple of the generator's "
            "(`learning_rate`); with `lr_schedule=cosine` both decay together. For the default DCGAN, D at "
            "twice G's rate scored worse than the same rate "
            "([results.md](results.md#choosing-the-default-dcgan-recipe))"
        ),
    )

    def check(self, batch_size: int) -> None:
        if not 0.0 <= self.label_smoothing < 1.0 or not 0.0 <= self.ema < 1.0:
            raise ValueError("label_smoothing and ema must be in [0, 1); e.g. label_smoothing=0.1, ema=0.999")
        if self.label_smoothing and self.gan_loss not in SMOOTHABLE:
            raise ValueError(
                f"label_smoothing moves a real target; {self.gan_loss} has none; use gan_loss=ns, minimax or lsgan"
            )
        if self.augment == "ada" and self.gan_loss in ("lsgan", "wgan-gp"):
            raise ValueError(
                f"augment=ada steers p by the sign of D(real), which {self.gan_loss}'s D does not carry (lsgan aims "
                "reals at 1 and fakes at 0; a critic's zero is arbitrary); use gan_loss=ns, minimax or hinge, "
                "or augment=diffaugment"
            )
        if self.d_lr_ratio <= 0:
            raise ValueError("d_lr_ratio must be above 0; e.g. d_lr_ratio=4 (D's rate 4x G's), 1 = the same rate")
        if self.replay and self.replay < batch_size:
            raise ValueError(f"replay buffer ({self.replay}) must hold at least one batch ({batch_size})")

    def check_replicas(self, replicas: int) -> None:
        if replicas > 1 and self.replay:
            raise ValueError("replay is not supported on several GPUs yet; drop it (replay=0) or use one device")

    def resolved(self) -> GanOptions:
        from dataclasses import replace

        steps = self.critic_steps or (WGAN_GP_CRITIC_STEPS if self.gan_loss == "wgan-gp" else 1)
        return replace(self, critic_steps=steps)


def scaled(rate, factor: float):
    """A learning rate (a float or a Keras schedule with an ``initial_learning_rate``) times ``factor``."""
    import keras

    if factor == 1.0:
        return rate
    if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
        config = rate.get_config()
        config["initial_learning_rate"] *= factor
        return type(rate).from_config(config)
    return rate * factor


class GanFamily(Family):
    """Adversarial families: ``models.gan.GAN``'s two-phase step over ``networks``'s pair."""

    options = GanOptions
    # 2: the training model counts images_seen (models/adversarial.py); 1's weights lack that variable
    network_version = 2
    value_range = "tanh"
    primary_metric = "fid"
    defaults: ClassVar[dict] = {"latent_dim": 100, "learning_rate": 2e-4, "width": 64}

    def networks(self, spec: ModelSpec, options: Any):
        """(generator, discriminator), freshly initialized (override)."""
        raise NotImplementedError

    def build_model(self, spec: ModelSpec, options: GanOptions, learning_rate):
        import keras

        from models import gan
        from models.layers import ReplayBuffer

        generator, discriminator = self.networks(spec, options)
        replay = None
        if options.replay:
            replay = ReplayBuffer(options.replay, spec.image_shape, options.replay_ratio, seed=spec.seed)
        model = gan.GAN(
            generator,
            discriminator,
            latent_dim=spec.latent_dim,
            loss=options.gan_loss,
            critic_steps=options.critic_steps,
            gp_weight=options.gp_weight,
            label_smoothing=options.label_smoothing,
            replay=replay,
            ema_decay=options.ema,
            num_classes=spec.num_classes if self.labels else 0,
            seed=spec.seed,
            augment=options.make_augment(),
        )
        # WGAN-GP's Adam settings (Gulrajani et al. use beta_1 0, beta_2 0.9; Keras's example 0.5, 0.9).
        beta_2 = 0.9 if options.gan_loss == "wgan-gp" else 0.999
        model.compile(
            d_optimizer=keras.optimizers.Adam(scaled(learning_rate, options.d_lr_ratio), beta_1=0.5, beta_2=beta_2),
            g_optimizer=keras.optimizers.Adam(learning_rate, beta_1=0.5, beta_2=beta_2),
        )
        return model

    def signatures(self, spec: ModelSpec) -> dict:
        classes = spec.num_classes if self.labels else 0
        return {"generator": signature.generator(spec.latent_dim, spec.image_shape, classes)}

    def export_networks(self, model) -> dict:
        return {"generator": model.exported_generator}


@register
class MlpGan(GanFamily):
    name = "gan"
    order = 2
    summary = "fully connected GAN (Goodfellow et al. 2014)"
    description = "the original fully connected GAN (Goodfellow et al. 2014), same two-phase step"
    defaults: ClassVar[dict] = {"latent_dim": 100, "learning_rate": 2e-4, "width": 0}  # no width

    def networks(self, spec: ModelSpec, options: GanOptions):
        from models import gan

        return (
            gan.build_mlp_generator(spec.latent_dim, spec.image_shape),
            gan.build_mlp_discriminator(
                spec.image_shape,
                minibatch_std=options.minibatch_std,
                group_size=options.minibatch_std_group,
            ),
        )
