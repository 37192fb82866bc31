"""Progressive growing of GANs (Karras et al. 2018), sized for 28x28 on a CPU.

Resolutions 7 -> 14 -> 28 (``models.progressive.resolutions``). Generator: z, pixel-normalized, a
dense layer to 7x7, then per resolution nearest 2x upsampling and two 3x3 convolutions, each
followed by leaky ReLU and pixel norm; a 1x1 to-image layer per resolution. Discriminator: the
mirror image (a 1x1 from-image layer per resolution, two 3x3 convolutions and 2x2 average pooling
per block), mini-batch standard deviation at 7x7, a 3x3 convolution and two dense layers. Every
weight uses the equalized learning rate.

Growth: training starts at 7x7; every ``phase_images`` images a phase ends: a fade-in (the new
resolution's output blended with the upsampled previous one, alpha rising linearly from 0 to 1)
then a stabilization at the new resolution, until 28x28. The level (which resolution) is a Python
number the training step is traced for (retraced when it changes); alpha is computed inside the
step from ``images_seen``, a checkpointed variable, so a resumed run continues in the same phase at
the same alpha. The generator always answers at 28x28 (the current resolution, nearest-upsampled),
so the data pipeline, the sample grids and the exported graph keep one shape while the model grows.
Loss: WGAN-GP plus the drift term 0.001 * D(x)^2 on reals; Adam (0, 0.99); generator EMA 0.999
(with the warm-up of ``models.adversarial.warmed_decay``).
"""

from __future__ import annotations

import keras
from keras import ops

from models import losses
from models.adversarial import Adversarial, update_ema, warmed_decay
from models.layers import EqualConv2D, EqualDense, MinibatchStd
from models.progressive import channels, resolutions

DRIFT = 0.001  # epsilon_drift of the paper


def pixel_norm(x):
    """Each pixel's feature vector to unit mean square (the paper's local response normalization)."""
    return x * ops.rsqrt(ops.mean(ops.square(x), axis=-1, keepdims=True) + 1e-8)


def upsample(x, factor: int):
    return x if factor == 1 else ops.repeat(ops.repeat(x, factor, axis=1), factor, axis=2)


def downsample(x, factor: int):
    return x if factor == 1 else ops.average_pool(x, factor, factor)


class ProGenerator(keras.Model):
    """z -> image at ``level`` (0 = 7x7, ...), blended with the level below by ``alpha`` and
    nearest-upsampled to the full size."""

    def __init__(self, latent_dim: int, image_shape, width: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.latent_dim, self.image_shape = int(latent_dim), tuple(int(d) for d in image_shape)
        self.sides, self.widths = resolutions(image_shape), channels(image_shape, width)
        side, c0 = self.sides[0], self.widths[0]
        self.dense = EqualDense(side * side * c0, activation="lrelu", name="dense")
        self.dense.build((None, self.latent_dim))
        self.base = EqualConv2D(c0, 3, activation="lrelu", name=f"conv{self.sides[0]}")
        self.base.build((None, side, side, c0))
        self.blocks = []
        for i in range(1, len(self.sides)):
            first = EqualConv2D(self.widths[i], 3, activation="lrelu", name=f"conv{self.sides[i]}_0")
            second = EqualConv2D(self.widths[i], 3, activation="lrelu", name=f"conv{self.sides[i]}_1")
            first.build((None, self.sides[i], self.sides[i], self.widths[i - 1]))
            second.build((None, self.sides[i], self.sides[i], self.widths[i]))
            self.blocks.append((first, second))
        self.to_image = []
        for side, width_i in zip(self.sides, self.widths):
            layer = EqualConv2D(self.image_shape[-1], 1, name=f"to_image{side}")
            layer.build((None, side, side, width_i))
            self.to_image.append(layer)
        self.built = True

    def call(self, z, level: int = -1, alpha=1.0):
        level = len(self.sides) - 1 if level < 0 else level
        x = ops.reshape(self.dense(pixel_norm(z)), (-1, self.sides[0], self.sides[0], self.widths[0]))
        x = pixel_norm(self.base(pixel_norm(x)))
        previous = x
        for first, second in self.blocks[:level]:
            previous = x
            x = pixel_norm(second(pixel_norm(first(upsample(x, 2)))))
        image = self.to_image[level](x)
        if level > 0:
            below = upsample(self.to_image[level - 1](previous), 2)
            image = below + alpha * (image - below)
        return upsample(image, self.sides[-1] // self.sides[level])


class ProDiscriminator(keras.Model):
    """Full-size image -> score, read at ``level`` (the image average-pooled to that resolution),
    the new from-image path blended with the one below by ``alpha``."""

    def __init__(self, image_shape, width: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.sides, self.widths = resolutions(image_shape), channels(image_shape, width)
        self.from_image = []
        for side, width_i in zip(self.sides, self.widths):
            layer = EqualConv2D(width_i, 1, activation="lrelu", name=f"from_image{side}")
            layer.build((None, side, side, self.image_shape[-1]))
            self.from_image.append(layer)
        self.blocks: list = [None]  # a block per resolution above the lowest
        for i in range(1, len(self.sides)):
            first = EqualConv2D(self.widths[i], 3, activation="lrelu", name=f"conv{self.sides[i]}_0")
            second = EqualConv2D(self.widths[i - 1], 3, activation="lrelu", name=f"conv{self.sides[i]}_1")
            first.build((None, self.sides[i], self.sides[i], self.widths[i]))
            second.build((None, self.sides[i], self.sides[i], self.widths[i]))
            self.blocks.append((first, second))
        side, c0 = self.sides[0], self.widths[0]
        self.minibatch_std = MinibatchStd()
        self.final_conv = EqualConv2D(c0, 3, activation="lrelu", name=f"conv{self.sides[0]}")
        self.final_conv.build((None, side, side, c0 + 1))
        self.fc = EqualDense(c0, activation="lrelu", name="fc")
        self.fc.build((None, side * side * c0))
        self.logit = EqualDense(1, name="logit")
        self.logit.build((None, c0))
        self.built = True

    def _block(self, i, x):
        first, second = self.blocks[i]
        return downsample(second(first(x)), 2)

    def call(self, image, level: int = -1, alpha=1.0):
        level = len(self.sides) - 1 if level < 0 else level
        x = downsample(image, self.sides[-1] // self.sides[level])
        h = self.from_image[level](x)
        if level > 0:
            h = self._block(level, h)
            below = self.from_image[level - 1](downsample(x, 2))
            h = below + alpha * (h - below)
        for i in range(level - 1, 0, -1):
            h = self._block(i, h)
        h = self.final_conv(self.minibatch_std(h))
        return self.logit(self.fc(ops.reshape(h, (-1, self.sides[0] * self.sides[0] * self.widths[0]))))


class ProGAN(Adversarial):
    """Progressive training: WGAN-GP with drift, the level and alpha from ``images_seen``.

    Trackers: ``d_loss``, ``g_loss``, ``d_real``, ``d_fake`` (critic scores), ``gradient_penalty``,
    and the step's ``level`` and ``alpha`` (logged per epoch by the train stage)."""

    def __init__(
        self,
        latent_dim: int,
        image_shape,
        *,
        width: int = 32,
        phase_images: int = 60_000,
        gp_weight: float = 10.0,
        ema_decay: float = 0.999,
        seed: int = 0,
        **kwargs,
    ):
        names = ("d_loss", "g_loss", "d_real", "d_fake", "gradient_penalty")
        super().__init__(trackers=names, seed=seed, **kwargs)
        self.latent_dim, self.image_shape = int(latent_dim), tuple(int(d) for d in image_shape)
        self.top = len(resolutions(image_shape)) - 1
        self.phase_images, self.gp_weight, self.ema_decay = int(phase_images), float(gp_weight), float(ema_decay)
        self.generator = ProGenerator(latent_dim, image_shape, width, name="generator")
        self.discriminator = ProDiscriminator(image_shape, width, name="discriminator")
        self.set_ema_twin(ProGenerator(latent_dim, image_shape, width, name="ema_generator"))
        self.level = 0  # the level the training step is traced for (``sync_level``)
        self.built = True

    # ---- the schedule --------------------------------------------------------------------------
    def level_at(self, images: float) -> int:
        """0 for the first phase (7x7), then one level up at the start of every fade-in."""
        return min((int(images // self.phase_images) + 1) // 2, self.top)

    def alpha_at(self, images):
        """Alpha as a tensor: rising 0 -> 1 through a fade-in phase (odd phases below 2 * top), else 1."""
        phase = ops.floor(images / self.phase_images)
        fading = ops.logical_and(ops.equal(phase % 2, 1), phase < 2 * self.top)
        return ops.where(fading, (images - phase * self.phase_images) / self.phase_images, 1.0)

    def sync_level(self) -> bool:
        """Set ``level`` from ``images_seen``; True (and the step is retraced) when it changed."""
        level = self.level_at(self.seen)
        if level == self.level and self.train_function is not None:
            return False
        self.level = level
        self.make_train_function(force=True)
        return True

    @property
    def seen(self) -> float:
        """``images_seen`` as a number, also while a function is being traced (an export)."""
        import tensorflow as tf

        with tf.init_scope():
            return float(self.images_seen.numpy())

    @property
    def alpha(self) -> float:
        """The current alpha as a number (``alpha_at`` in Python)."""
        phase = self.seen // self.phase_images
        if phase % 2 == 1 and phase < 2 * self.top:
            return (self.seen - phase * self.phase_images) / self.phase_images
        return 1.0

    # ---- Keras plumbing ------------------------------------------------------------------------
    @property
    def exported_generator(self):
        """The EMA generator at the level and alpha of the images seen, as a one-input network
        (z -> image). From ``images_seen``, not ``level``: a model loaded from a checkpoint has its
        images seen but is traced for no level yet, and must export what it was trained to."""
        return GrownGenerator(self.ema_generator, lambda: (self.level_at(self.seen), self.alpha))

    def fit(self, *args, callbacks=None, **kwargs):
        self.level = self.level_at(self.seen)  # a resumed run: the restored phase
        return super().fit(*args, callbacks=[Growth(self), *(callbacks or [])], **kwargs)

    def call(self, z):
        return self.ema_generator(z, level=self.level, alpha=self.alpha)

    # ---- the step --------------------------------------------------------------------------------
    def _reals_at_level(self, images, alpha):
        """Reals as D sees them at this level: pooled to its resolution and, in a fade-in, blended
        with the level below (so reals and fakes fade alike), back at full size."""
        factor = self.image_shape[0] // resolutions(self.image_shape)[self.level]
        x = downsample(images, factor)
        if self.level > 0:
            below = upsample(downsample(x, 2), 2)
            x = below + alpha * (x - below)
        return upsample(x, factor)

    def train_step(self, data):
        import tensorflow as tf

        from models import sampling

        real = ops.convert_to_tensor(data[0] if isinstance(data, (tuple, list)) else data)
        batch = ops.shape(real)[0]
        alpha = ops.cast(self.alpha_at(self.images_seen), real.dtype)
        level = self.level

        def critic(x, training=True):  # no layer of D behaves differently in training
            return self.discriminator(x, level=level, alpha=alpha)

        real = self._reals_at_level(real, alpha)
        z = sampling.normal_per_replica((batch, self.latent_dim), self.seed_generator)
        fake = self.generator(z, level=level, alpha=alpha)
        with tf.GradientTape() as tape:
            real_out, fake_out = critic(real), critic(ops.stop_gradient(fake))
            mix = keras.random.uniform((batch,), seed=self.seed_generator)
            penalty = losses.gradient_penalty(critic, real, ops.stop_gradient(fake), mix)
            wasserstein = losses.discriminator_loss(real_out, fake_out, "wgan-gp")
            per_example = wasserstein + self.gp_weight * penalty + DRIFT * losses.drift(real_out)
            loss = losses.distributed_mean(per_example, batch)
        self.descend(self.d_optimizer, tape, loss, self.discriminator.trainable_variables, unused_ok=True)
        with tf.GradientTape() as tape:
            z = sampling.normal_per_replica((batch, self.latent_dim), self.seed_generator)
            g_per_example = losses.generator_loss(critic(self.generator(z, level=level, alpha=alpha)), "wgan-gp")
            g_loss = losses.distributed_mean(g_per_example, batch)
        self.descend(self.g_optimizer, tape, g_loss, self.generator.trainable_variables, unused_ok=True)
        updates = ops.cast(self.g_optimizer.iterations, "float32") - 1.0
        update_ema(self.ema_generator, self.generator, warmed_decay(self.ema_decay, updates))
        self.count_images(batch)
        for name, value in (
            ("d_loss", per_example),
            ("g_loss", g_per_example),
            ("d_real", real_out),
            ("d_fake", fake_out),
            ("gradient_penalty", penalty),
        ):
            self.trackers[name].update_state(value)
        resolution = float(resolutions(self.image_shape)[level])  # the side the networks work at: 7, 14, 28
        return self.logs(
            level=ops.convert_to_tensor(float(level)), resolution=ops.convert_to_tensor(resolution), alpha=alpha
        )


class GrownGenerator(keras.Model):
    """A ``ProGAN``'s EMA generator at the level and alpha it has when called: z -> full-size image.
    (The sample grids of every epoch show the growth; an export traces the state it has then.)"""

    def __init__(self, network: ProGenerator, state, **kwargs):
        super().__init__(name="generator", **kwargs)
        self.network = network
        self.state = state  # () -> (level, alpha): a function, so Keras does not track the training model
        self.built = True

    def call(self, z):
        level, alpha = self.state()
        return self.network(z, level=level, alpha=alpha)


class Growth(keras.callbacks.Callback):
    """Retraces the training step when ``images_seen`` enters a new level."""

    def __init__(self, model_: ProGAN):
        super().__init__()
        self.progan = model_

    def on_train_batch_end(self, batch, logs=None):
        self.progan.sync_level()
