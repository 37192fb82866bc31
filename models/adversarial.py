"""What the two-network training models share (``GAN``, ``ProGAN``, ``StyleGAN``): two optimizers
given to ``compile``, their slots built before a checkpoint loads into them, a gradient step, the
images seen, the trackers, and the generator's exponential moving average (EMA) twin."""

from __future__ import annotations

import keras
from keras import ops

from models.replicas import step_logs


class Adversarial(keras.Model):
    """Base of the models with a generator and a discriminator, each with its own optimizer.

    It owns what they share: the seed state of the step's random draws, ``images_seen`` (a
    checkpointed count of the real images trained on, summed over replicas), the trackers (``Mean``
    metrics by name, in ``trackers``), the generator's EMA twin and which generator is exported.
    Subclasses set ``generator`` and ``discriminator``, call ``set_ema_twin`` when they average
    the generator, and write ``train_step`` (calling ``count_images``, passing every image D sees
    through ``augmented`` and its logits on the reals to ``observe_reals``).

    Args:
        augment: a ``models.augment.Augment`` (ADA or DiffAugment) or None.
    """

    def __init__(self, trackers=(), seed: int = 0, augment=None, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.images_seen = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="images_seen", aggregation="sum"
        )
        self.trackers = {name: keras.metrics.Mean(name=name) for name in trackers}
        self.ema_generator = None
        self.augment = augment

    def augmented(self, images):
        """What the discriminator sees of ``images`` (reals and fakes alike): augmented when the
        model augments, else the images themselves."""
        return images if self.augment is None else self.augment(images, seed=self.seed_generator)

    def observe_reals(self, real_logits) -> None:
        """After a discriminator step: ADA's p adapts to how sure D is of the (augmented) reals."""
        if self.augment is not None:
            self.augment.observe(real_logits)

    def set_ema_twin(self, twin) -> None:
        """``twin``, a network built as the generator is, becomes the EMA generator: it starts as a
        copy of the generator's weights and is never trained (``update_ema`` moves it)."""
        twin.set_weights(self.generator.get_weights())
        twin.trainable = False
        self.ema_generator = twin

    @property
    def exported_generator(self):
        """What export, evaluate and serving get: the EMA generator when there is one, else the raw one."""
        return self.ema_generator if self.ema_generator is not None else self.generator

    def count_images(self, batch) -> None:
        """Add this replica's ``batch`` real images to ``images_seen`` (the replicas' counts add up)."""
        self.images_seen.assign_add(ops.cast(batch, "float32"))

    def compile(self, d_optimizer, g_optimizer, **kwargs):
        super().compile(**kwargs)
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer

    def generator_variables(self):
        """The variables the generator's optimizer updates."""
        return self.generator.trainable_variables

    def build_optimizers(self) -> None:
        """Create optimizer slots now: before loading a checkpoint into them, and outside the
        replicas' step under tf.distribute (variables cannot be created lazily there)."""
        for optimizer, variables in (
            (self.d_optimizer, self.discriminator.trainable_variables),
            (self.g_optimizer, self.generator_variables()),
        ):
            if not optimizer.built:
                optimizer.build(variables)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def logs(self, **extra) -> dict:
        """The step's logs: every tracker's value, ADA's p (``augment_p``), and ``extra`` ones (see
        ``replicas.step_logs``)."""
        if self.augment is not None and self.augment.kind == "ada":
            extra = {"augment_p": ops.convert_to_tensor(self.augment.p), **extra}
        return step_logs({**{metric.name: metric.result() for metric in self.metrics}, **extra})

    @staticmethod
    def descend(optimizer, tape, loss, variables, unused_ok: bool = False) -> None:
        """One optimizer step on ``loss``'s gradients (recorded by ``tape``) for ``variables``.
        ``unused_ok``: variables that ``loss`` does not depend on are left alone (a growing
        network's layers above its current level), instead of Keras's warning about them."""
        pairs = zip(tape.gradient(loss, variables), variables)
        optimizer.apply_gradients([(g, v) for g, v in pairs if g is not None] if unused_ok else pairs)


def warmed_decay(decay: float, updates):
    """min(decay, (1 + n) / (10 + n)) after n updates: the warm-up of TensorFlow's
    ExponentialMovingAverage, so that early on the average forgets the random initialization
    quickly (a fixed 0.999 still holds 0.999**n of it after n steps: a third after 1,100)."""
    return ops.minimum(decay, (1.0 + updates) / (10.0 + updates))


def update_ema(ema_network, network, decay) -> None:
    """ema <- decay * ema + (1 - decay) * current for ``network``'s trainable weights; the others
    (batch-norm statistics, StyleGAN's w_avg) are copied."""
    trainable = {id(v) for v in network.trainable_weights}
    for ema, current in zip(ema_network.weights, network.weights):
        ema.assign(current + decay * (ema - current) if id(current) in trainable else current)
