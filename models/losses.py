"""GAN losses as pure functions of discriminator (critic) outputs.

Each loss returns a **per-example** loss of shape (batch,); the training step reduces it with
``distributed_mean`` so the same code is right on one device and under ``tf.distribute``.
Outputs are raw: logits for the cross-entropy losses, scores for LSGAN, hinge and WGAN.

  name        discriminator / critic                      generator
  minimax     -log D(x) - log(1 - D(G(z)))                log(1 - D(G(z)))   (saturates)
  ns          as minimax                                  -log D(G(z))       (Goodfellow's fix)
  lsgan       (D(x) - 1)^2 / 2 + D(G(z))^2 / 2            (D(G(z)) - 1)^2 / 2   (Mao et al. 2017)
  hinge       relu(1 - D(x)) + relu(1 + D(G(z)))          -D(G(z))           (Lim & Ye 2017)
  wgan-gp     D(G(z)) - D(x) + weight * penalty           -D(G(z))           (Gulrajani et al. 2017)

Regularizers, per example: ``gradient_penalty`` (WGAN-GP), ``r1_penalty`` (StyleGAN2's R1) and
``drift`` (ProGAN's).

``real_label`` < 1 is one-sided label smoothing (Salimans et al. 2016): only the real target
moves; it applies to the losses with targets (minimax, ns, lsgan).
"""

from __future__ import annotations

import tensorflow as tf
from keras import ops

LOSSES = ("minimax", "ns", "lsgan", "hinge", "wgan-gp")  # the table above, by name
PROBABILITY_OUTPUT = ("minimax", "ns")  # sigmoid(output) is D's probability that the input is real


def _flat(outputs):
    return ops.reshape(outputs, (-1,))


def _bce_with_logits(labels, logits):
    # (batch, 1) logits -> (batch,) binary cross-entropy in nats, numerically stable.
    logits = _flat(logits)
    labels = ops.broadcast_to(ops.cast(labels, logits.dtype), ops.shape(logits))
    return ops.binary_crossentropy(labels, logits, from_logits=True)


def discriminator_loss(real_outputs, fake_outputs, kind: str = "ns", real_label: float = 1.0):
    """Per-example loss of the discriminator (without WGAN-GP's penalty): (batch,)."""
    if kind in ("minimax", "ns"):
        return _bce_with_logits(real_label, real_outputs) + _bce_with_logits(0.0, fake_outputs)
    if kind == "lsgan":
        return 0.5 * ops.square(_flat(real_outputs) - real_label) + 0.5 * ops.square(_flat(fake_outputs))
    if kind == "hinge":
        return ops.relu(1.0 - _flat(real_outputs)) + ops.relu(1.0 + _flat(fake_outputs))
    if kind == "wgan-gp":
        return _flat(fake_outputs) - _flat(real_outputs)
    raise ValueError(f"unknown GAN loss {kind!r}; valid: {', '.join(LOSSES)}")


def generator_loss(fake_outputs, kind: str = "ns"):
    """Per-example loss of the generator on fresh fakes: (batch,)."""
    if kind == "minimax":  # minimize log(1 - D(G(z))) = -softplus(logit)
        return -_bce_with_logits(0.0, fake_outputs)
    if kind == "ns":  # fakes labelled 1: -log D(G(z))
        return _bce_with_logits(1.0, fake_outputs)
    if kind == "lsgan":
        return 0.5 * ops.square(_flat(fake_outputs) - 1.0)
    if kind in ("hinge", "wgan-gp"):
        return -_flat(fake_outputs)
    raise ValueError(f"unknown GAN loss {kind!r}; valid: {', '.join(LOSSES)}")


def gradient_penalty(critic, real, fake, alpha, critic_inputs=(), epsilon: float = 1e-12):
    """WGAN-GP's penalty per example, (||grad_x critic(x_hat)|| - 1)^2 at x_hat = alpha x + (1 - alpha) G(z).

    Args:
        critic: network image (or [image, *critic_inputs]) -> score.
        real, fake: image batches of equal shape.
        alpha: (batch,) uniform [0, 1] mixing weights.
        critic_inputs: extra inputs of a conditional critic (e.g. the labels).
        epsilon: inside the square root, so the norm's gradient stays finite at 0.
    Returns: (batch,).
    """
    alpha = ops.reshape(ops.cast(alpha, real.dtype), (-1,) + (1,) * (len(real.shape) - 1))
    mixed = alpha * real + (1.0 - alpha) * fake
    with tf.GradientTape() as tape:
        tape.watch(mixed)
        scores = critic([mixed, *critic_inputs] if critic_inputs else mixed, training=True)
    grads = tape.gradient(scores, mixed)
    norm = ops.sqrt(ops.sum(ops.square(ops.reshape(grads, (ops.shape(grads)[0], -1))), axis=-1) + epsilon)
    return ops.square(norm - 1.0)


def r1_penalty(discriminator, real):
    """R1 (Mescheder et al. 2018) per image: |grad_x D(x)|^2 at the real images, (batch,); the
    caller weights it (gamma / 2, times the interval when it is lazy)."""
    real = tf.convert_to_tensor(real)
    with tf.GradientTape() as tape:
        tape.watch(real)
        outputs = discriminator(real, training=True)
    grads = tape.gradient(outputs, real)  # of the outputs' sum: each image's own gradient
    return ops.sum(ops.square(ops.reshape(grads, (ops.shape(grads)[0], -1))), axis=-1)


def drift(real_outputs):
    """ProGAN's drift term per example (Karras et al. 2018): D(x)^2 on the reals, which keeps a
    WGAN critic's outputs near 0; the caller weights it (epsilon_drift, 0.001)."""
    return ops.square(_flat(real_outputs))


def distributed_mean(per_example, per_replica_batch):
    """Mean over the *global* batch: sum on this replica / (per-replica batch * replicas).

    Keras sums gradients across replicas, so scaling by the global batch makes the update
    the same as on one device with the whole batch.
    """
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    total = ops.cast(per_replica_batch * replicas, per_example.dtype)
    return ops.sum(per_example) / total
