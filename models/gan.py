"""Adversarial training (Goodfellow et al. 2014) with the course's fixes as options, and the
original fully connected GAN's networks.

``GAN`` trains any generator/discriminator pair (MLP, DCGAN, conditional DCGAN) with the
two-phase step: D (or a WGAN critic, ``critic_steps`` times) on real vs fake with G frozen,
then G on fresh fakes with D frozen. Options:
  - ``loss``: minimax | ns | lsgan | hinge | wgan-gp (``models/losses.py``);
  - ``label_smoothing``: one-sided, real target 1 - s;
  - ``replay``: a ``ReplayBuffer`` mixing old fakes into D's fake batch;
  - ``ema_decay``: an exponential moving average of G's weights, handed out for export;
  - conditional networks (``num_classes`` > 0): G([z, label]) and D([image, label]).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers, ops

from models import losses, sampling
from models.adversarial import Adversarial, update_ema, warmed_decay
from models.layers import GROUP_SIZE, MinibatchStd


def build_mlp_generator(latent_dim: int, image_shape: tuple[int, int, int], units=(256, 512, 1024)) -> keras.Model:
    """The original GAN's generator, fully connected: z -> image in [-1, 1]."""
    z = keras.Input((latent_dim,), name="z")
    x = z
    for n in units:
        x = layers.Dense(n)(x)
        x = layers.LeakyReLU(0.2)(x)
    x = layers.Dense(int(image_shape[0] * image_shape[1] * image_shape[2]), activation="tanh")(x)
    return keras.Model(z, layers.Reshape(image_shape, name="image")(x), name="generator")


def build_mlp_discriminator(
    image_shape: tuple[int, int, int],
    units=(512, 256),
    dropout_rate: float = 0.3,
    minibatch_std: bool = False,
    group_size: int = GROUP_SIZE,
) -> keras.Model:
    """The original GAN's discriminator, fully connected: image -> logit."""
    image = keras.Input(image_shape, name="image")
    x = layers.Flatten()(image)
    for n in units:
        x = layers.Dense(n)(x)
        x = layers.LeakyReLU(0.2)(x)
        x = layers.Dropout(dropout_rate)(x)
    if minibatch_std:
        x = MinibatchStd(group_size)(x)
    return keras.Model(image, layers.Dense(1, name="logit")(x), name="discriminator")


def example_group(network) -> int | None:
    """How many consecutive examples each output of ``network`` depends on: 1 when it mixes no
    examples, g when its only mini-batch statistic is over consecutive groups of g (``MinibatchStd``),
    None when it mixes the batch as a whole (batch normalization's training statistics, a
    whole-batch statistic). A discriminator of group g gives a batch [real; fake] whose halves are
    multiples of g the same outputs in one call as in two."""
    layers_ = list(network._flatten_layers())
    if any(isinstance(layer, layers.BatchNormalization) for layer in layers_):
        return None
    groups = {layer.group_size for layer in layers_ if isinstance(layer, MinibatchStd)}
    if not groups:
        return 1
    return groups.pop() if len(groups) == 1 and 0 not in groups else None


class GAN(Adversarial):
    """Alternating GAN training of a generator and a discriminator (or critic).

    Each ``train_step`` has two phases:
      1. the discriminator learns real images (label 1) vs fakes (label 0), generator frozen
         (``critic_steps`` updates, each on fresh fakes, for WGAN-GP);
      2. the generator learns on fresh fakes labelled 1, discriminator frozen.
    Trackers: ``d_loss``, ``g_loss``, ``d_real`` = mean D(x), ``d_fake`` = mean D(G(z)):
    probabilities for the cross-entropy losses (at the Nash equilibrium both tend to 1/2), raw
    scores for the others; ``gradient_penalty`` for WGAN-GP.

    Args:
        generator: z (or [z, label]) -> image in [-1, 1].
        discriminator: image (or [image, label]) -> one output per image.
        latent_dim: size of z.
        loss: one of ``losses.LOSSES``.
        critic_steps: discriminator updates per generator update.
        gp_weight: WGAN-GP's penalty weight (lambda).
        label_smoothing: s in [0, 1): the real target becomes 1 - s.
        replay: a ``ReplayBuffer`` or None.
        ema_decay: 0 = off; else the generator EMA's decay (e.g. 0.999).
        num_classes: > 0 for a conditional pair.
        seed: seeds the latents and labels drawn in ``train_step``.
    """

    def __init__(
        self,
        generator,
        discriminator,
        latent_dim: int,
        *,
        loss: str = "ns",
        critic_steps: int = 1,
        gp_weight: float = 10.0,
        label_smoothing: float = 0.0,
        replay=None,
        ema_decay: float = 0.0,
        num_classes: int = 0,
        seed: int = 0,
        **kwargs,
    ):
        if loss not in losses.LOSSES:
            raise ValueError(f"unknown GAN loss {loss!r}; valid: {', '.join(losses.LOSSES)}")
        trackers = ("d_loss", "g_loss", "d_real", "d_fake") + (("gradient_penalty",) if loss == "wgan-gp" else ())
        super().__init__(trackers=trackers, seed=seed, **kwargs)
        self.generator = generator
        self.discriminator = discriminator
        self.latent_dim = latent_dim
        self.loss_kind, self.critic_steps, self.gp_weight = loss, int(critic_steps), float(gp_weight)
        self.real_label = 1.0 - float(label_smoothing)
        self.replay = replay
        self.ema_decay = float(ema_decay)
        self.num_classes = int(num_classes)
        self.example_group = example_group(discriminator)
        if self.ema_decay:
            self.set_ema_twin(keras.models.clone_model(generator))
        self.built = True  # the networks arrive built

    def joint_call(self, batch, fakes) -> bool:
        """Whether D sees real and fake images in one call (decided as the step is traced): when
        it mixes examples in groups that the real and the fake halves split evenly, and the fakes
        are as many as the reals (replayed ones included)."""
        if self.example_group is None:
            return False
        if self.example_group == 1:  # each output its own example's
            return True
        size = batch if isinstance(batch, int) else None
        return size is not None and fakes.shape[0] == size and size % self.example_group == 0

    @property
    def conditional(self) -> bool:
        return self.num_classes > 0

    def call(self, z, training=False):
        return self.generator(z, training=training)

    # ---- pieces of the step ------------------------------------------------------------------
    def _latents(self, batch):
        return sampling.normal_per_replica((batch, self.latent_dim), self.seed_generator)

    def _labels(self, batch):
        return sampling.labels_per_replica(batch, self.num_classes, self.seed_generator)

    def _g(self, z, labels, training=True):
        return self.generator([z, labels] if self.conditional else z, training=training)

    def _d(self, images, labels, training=True):
        return self.discriminator([images, labels] if self.conditional else images, training=training)

    def _as_probability(self, outputs):
        return ops.sigmoid(outputs) if self.loss_kind in losses.PROBABILITY_OUTPUT else outputs

    def _discriminator_step(self, real_images, real_labels=None):
        """Phase 1: update D on real (target 1 - smoothing) and fake (0); G is not updated.

        Conditional fakes get the real batch's labels, so D compares like with like."""
        batch = ops.shape(real_images)[0]
        labels = real_labels if self.conditional else None
        fresh = self._g(self._latents(batch), labels)
        fakes, fake_labels = fresh, labels
        if self.replay is not None:
            fakes, fake_labels = self.replay.mix(fresh, labels)
            self.replay.push(fresh, labels)
        with tf.GradientTape() as tape:
            if self.joint_call(batch, fakes):  # one call on [real; fake]: same outputs, half the calls
                both = self._d(
                    self.augmented(ops.concatenate([real_images, ops.cast(fakes, real_images.dtype)])),
                    ops.concatenate([labels, fake_labels]) if self.conditional else None,
                )
                real_out, fake_out = both[:batch], both[batch:]
            else:
                real_out = self._d(self.augmented(real_images), labels)
                fake_out = self._d(self.augmented(fakes), fake_labels if self.conditional else None)
            per_example = losses.discriminator_loss(real_out, fake_out, self.loss_kind, self.real_label)
            if self.loss_kind == "wgan-gp":
                alpha = keras.random.uniform((batch,), seed=self.seed_generator)
                extra = (labels,) if self.conditional else ()
                penalty = losses.gradient_penalty(self.discriminator, real_images, fresh, alpha, extra)
                self.trackers["gradient_penalty"].update_state(penalty)
                per_example = per_example + self.gp_weight * penalty
            loss = losses.distributed_mean(per_example, batch)
        self.descend(self.d_optimizer, tape, loss, self.discriminator.trainable_variables)
        self.observe_reals(real_out)
        self.trackers["d_loss"].update_state(per_example)
        self.trackers["d_real"].update_state(self._as_probability(real_out))
        self.trackers["d_fake"].update_state(self._as_probability(fake_out))

    def _generator_step(self, batch):
        """Phase 2: update G on fresh fakes labelled 1; D is not updated."""
        labels = self._labels(batch) if self.conditional else None
        with tf.GradientTape() as tape:
            fake_out = self._d(self.augmented(self._g(self._latents(batch), labels)), labels)
            per_example = losses.generator_loss(fake_out, self.loss_kind)
            loss = losses.distributed_mean(per_example, batch)
        self.descend(self.g_optimizer, tape, loss, self.generator.trainable_variables)
        self.trackers["g_loss"].update_state(per_example)

    def _ema_step(self):
        """The EMA generator moves towards G by ``warmed_decay(ema_decay, n)`` after G's n-th
        update; buffers (batch-norm statistics) are copied."""
        updates = ops.cast(self.g_optimizer.iterations, "float32") - 1.0  # G has just stepped: n = that - 1
        update_ema(self.ema_generator, self.generator, warmed_decay(self.ema_decay, updates))

    def train_step(self, data):
        if isinstance(data, (tuple, list)):
            real_images, real_labels = data[0], (data[1] if len(data) > 1 else None)
        else:
            real_images, real_labels = data, None
        real_images = ops.convert_to_tensor(real_images)
        if real_labels is not None:
            real_labels = ops.cast(ops.convert_to_tensor(real_labels), "int32")
        for _ in range(self.critic_steps):
            self._discriminator_step(real_images, real_labels)
        self._generator_step(ops.shape(real_images)[0])
        if self.ema_generator is not None:
            self._ema_step()
        self.count_images(ops.shape(real_images)[0])
        return self.logs()
