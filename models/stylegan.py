"""StyleGAN2 training (Karras et al. 2020) over ``models/stylegan_networks.py``'s networks: the
two-phase step with the non-saturating loss and lazy R1 (``models/losses.py``), style mixing,
``w_avg`` tracking and a generator EMA by half-life."""

from __future__ import annotations

import keras
from keras import ops

from models.adversarial import Adversarial, update_ema
from models.progressive import noise_size, num_ws
from models.stylegan_networks import build_discriminator, build_generator, build_mapping, build_synthesis


class StyleGAN(Adversarial):
    """StyleGAN2 training: the two-phase GAN step with the non-saturating logistic loss, lazy R1 on
    reals, style-mixing regularization, ``w_avg`` tracking and a generator EMA.

    Phase 1 (D, G frozen): D(real) vs D(G(z)) with softplus losses; every ``r1_interval``-th D step
    also ``r1_gamma / 2 * |grad D(real)|^2``, times ``r1_interval`` (lazy regularization: the same
    expected strength, Karras et al. 2020). Phase 2 (G, D frozen): fresh fakes, softplus(-D(G(z))).
    Fakes in both phases use style mixing: with probability ``mixing_prob`` an image takes its
    layers from index c on (c uniform in 1 .. num_ws - 1) from a second latent. Noise is drawn per
    step. After each G step, ``w_avg`` moves towards the batch's mean w (beta ``w_avg_beta``) and
    the EMA generator towards G with the half-life ``ema_kimg`` thousand images (ramped up over
    the first images: at most ``ema_rampup`` times the images seen); ``w_avg`` is copied, not averaged.

    Trackers: ``d_loss``, ``g_loss``, ``d_real`` and ``d_fake`` (mean sigmoid of D: 1/2 at the
    equilibrium), ``r1`` (the penalty on the steps that compute it).
    """

    def __init__(
        self,
        latent_dim: int,
        image_shape,
        *,
        width: int = 16,
        mapping_layers: int = 2,
        r1_gamma: float = 0.01,
        r1_interval: int = 16,
        mixing_prob: float = 0.9,
        ema_kimg: float = 10.0,
        ema_rampup: float = 0.05,
        w_avg_beta: float = 0.995,
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(trackers=("d_loss", "g_loss", "d_real", "d_fake", "r1"), seed=seed, **kwargs)
        self.latent_dim, self.image_shape = int(latent_dim), tuple(int(d) for d in image_shape)
        self.num_ws, self.noise_size = num_ws(self.image_shape), noise_size(self.image_shape)
        self.r1_gamma, self.r1_interval = float(r1_gamma), int(r1_interval)
        self.mixing_prob, self.ema_kimg, self.ema_rampup = float(mixing_prob), float(ema_kimg), float(ema_rampup)
        self.w_avg_beta = float(w_avg_beta)
        self.mapping = build_mapping(self.latent_dim, mapping_layers)
        self.synthesis = build_synthesis(self.image_shape, width)
        self.generator = build_generator(self.mapping, self.synthesis, self.latent_dim, self.image_shape)
        self.discriminator = build_discriminator(self.image_shape, width)
        self.ema_mapping = build_mapping(self.latent_dim, mapping_layers)
        self.ema_synthesis = build_synthesis(self.image_shape, width)
        self.set_ema_twin(build_generator(self.ema_mapping, self.ema_synthesis, self.latent_dim, self.image_shape))
        self.w_average = self.generator.get_layer("w_average")
        self.built = True

    def generator_variables(self):
        return self.mapping.trainable_variables + self.synthesis.trainable_variables

    def call(self, inputs, training=False):
        return self.ema_generator(inputs, training=training)

    # ---- pieces of the step ------------------------------------------------------------------
    def _mixed_styles(self, batch):
        """(ws (b, num_ws, W_DIM) with style mixing, w of the first latents (b, W_DIM))."""
        from models import sampling

        w1 = self.mapping(sampling.normal_per_replica((batch, self.latent_dim), self.seed_generator), training=True)
        w2 = self.mapping(sampling.normal_per_replica((batch, self.latent_dim), self.seed_generator), training=True)
        cutoff = keras.random.randint((batch,), 1, self.num_ws, seed=self.seed_generator, dtype="int32")
        mixes = keras.random.uniform((batch,), seed=self.seed_generator) < self.mixing_prob
        cutoff = ops.where(mixes, cutoff, self.num_ws)
        mix = ops.cast(ops.arange(self.num_ws, dtype="int32")[None, :] >= cutoff[:, None], "float32")[:, :, None]
        return w1[:, None, :] * (1.0 - mix) + w2[:, None, :] * mix, w1

    def _fakes(self, batch):
        from models import sampling

        ws, w1 = self._mixed_styles(batch)
        noise = sampling.normal_per_replica((batch, self.noise_size), self.seed_generator)
        return self.synthesis([ws, noise], training=True), w1

    def _discriminator_step(self, real_images):
        import tensorflow as tf

        from models import losses

        batch = ops.shape(real_images)[0]
        fakes, _ = self._fakes(batch)
        fakes = ops.stop_gradient(fakes)
        regularize = ops.equal(self.d_optimizer.iterations % self.r1_interval, 0)
        seen = self.augmented(ops.concatenate([real_images, ops.cast(fakes, real_images.dtype)]))
        reals_seen = ops.stop_gradient(seen[:batch])
        with tf.GradientTape() as tape:
            real_out = self.discriminator(reals_seen, training=True)
            fake_out = self.discriminator(seen[batch:], training=True)
            per_example = losses.discriminator_loss(real_out, fake_out, "ns")
            penalty = tf.cond(
                regularize, lambda: losses.r1_penalty(self.discriminator, reals_seen), lambda: ops.zeros((batch,))
            )
            total = per_example + (self.r1_gamma / 2.0 * self.r1_interval) * penalty
            loss = losses.distributed_mean(total, batch)
        self.descend(self.d_optimizer, tape, loss, self.discriminator.trainable_variables)
        self.observe_reals(real_out)
        self.trackers["d_loss"].update_state(per_example)
        self.trackers["d_real"].update_state(ops.sigmoid(real_out))
        self.trackers["d_fake"].update_state(ops.sigmoid(fake_out))
        self.trackers["r1"].update_state(penalty, sample_weight=ops.cast(regularize, "float32") * ops.ones((batch,)))

    def _generator_step(self, batch):
        import tensorflow as tf

        from models import losses

        with tf.GradientTape() as tape:
            fakes, w1 = self._fakes(batch)
            per_example = losses.generator_loss(self.discriminator(self.augmented(fakes), training=True), "ns")
            loss = losses.distributed_mean(per_example, batch)
        self.descend(self.g_optimizer, tape, loss, self.generator_variables())
        self.trackers["g_loss"].update_state(per_example)
        mean_w = ops.mean(ops.stop_gradient(w1), axis=0)
        self.w_average.w_avg.assign(mean_w + self.w_avg_beta * (self.w_average.w_avg - mean_w))

    def _ema_step(self, batch):
        """EMA generator <- lerp(G, EMA, beta), beta = 0.5 ** (global batch / half-life in images),
        the half-life at most ``ema_rampup`` times the images seen (every replica's, as
        StyleGAN2-ADA counts them); w_avg copied."""
        import tensorflow as tf

        self.count_images(batch)  # images_seen counts every replica's images
        global_batch = ops.cast(batch, "float32") * tf.distribute.get_strategy().num_replicas_in_sync
        half_life = self.ema_kimg * 1000.0
        if self.ema_rampup > 0:
            half_life = ops.minimum(half_life, self.images_seen * self.ema_rampup)
        beta = ops.power(0.5, global_batch / ops.maximum(half_life, 1e-8))
        update_ema(self.ema_generator, self.generator, beta)

    def train_step(self, data):
        real_images = ops.convert_to_tensor(data[0] if isinstance(data, (tuple, list)) else data)
        batch = ops.shape(real_images)[0]
        self._discriminator_step(real_images)
        self._generator_step(batch)
        self._ema_step(batch)
        return self.logs()
