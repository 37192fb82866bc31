"""Differentiable augmentation of the images a discriminator sees, real and fake alike: adaptive
discriminator augmentation (ADA, Karras et al. 2020) and DiffAugment (Zhao et al. 2020).

Why: on a small dataset the discriminator memorises the reals and its feedback to the generator
stops meaning anything. Augmenting every image D sees (reals and fakes, in both phases) with
differentiable operations hides the memorised details, and as long as each operation is applied
with probability p < ~0.8 the generator is not pushed to produce augmented-looking images (the
augmentations do not "leak"). The exported generator never sees any of this: only the training
step calls ``Augment``.

ADA's pipeline here is the paper's "bgc" (what each draws, in [-1, 1] images, each applied to an
image with probability p, independently per image and per operation):
  blit:      x-flip; rotation by a multiple of 90 degrees; integer translation up to 1/8 of the side;
  geometric: isotropic scaling 2**N(0, 0.2); arbitrary rotation U(-180, 180) degrees (twice: before
             and after the anisotropic scaling, each with probability 1 - sqrt(1 - p), so that a
             rotation happens with probability p); anisotropic scaling 2**N(0, 0.2) on x and its
             inverse on y; fractional translation N(0, 1/8) of the side;
  colour:    brightness + N(0, 0.2); contrast * 2**N(0, 0.5); luma flip; hue rotation U(-180, 180)
             degrees about the grey axis; saturation * 2**N(0, 1) (grey images: brightness,
             contrast and luma flip only).
The blit and geometric operations compose into one affine map per image, sampled once with
bilinear interpolation and reflection at the borders (the paper pads by reflection too; it
resamples with a wavelet filter, which is left out here). The sampler is written with gathers, so
its gradient is exact (TensorFlow's ImageProjectiveTransform gradient is an approximation). The
paper's image-space filtering, noise and cutout are not implemented.

p moves every ``interval`` discriminator steps by sign(r_t - target) * (images in those steps) /
``speed_images`` (so it can cross 0 -> 1 in ``speed_images`` images), r_t = E[sign(D(real))] over
those steps, and stays in [0, 1]. p is a weight of the model: checkpointed, so a resumed run
continues with it.

DiffAugment ("color,translation,cutout", always on): brightness + U(-0.5, 0.5); saturation *
U(0, 2); contrast * U(0.5, 1.5); integer translation up to 1/8 of the side with zero fill; a
cutout of half the side's square at a uniform position.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import ops

from models import sampling

KINDS = ("none", "ada", "diffaugment")
LOG2_STD = 0.2  # of the scalings, in octaves
TRANSLATE = 0.125  # of the side: integer translation's range, fractional translation's std


class Augment(keras.layers.Layer):
    """Augmentation of [-1, 1] images (batch, h, w, c), c = 1 or 3, with probability ``p``.

    Args:
        kind: "ada" (p adapts; starts at 0) or "diffaugment" (always on).
        target: ADA's r_t target (the paper's 0.6).
        speed_images: images over which p can move from 0 to 1.
        interval: discriminator steps between adjustments of p.
    """

    def __init__(
        self, kind: str = "ada", target: float = 0.6, speed_images: float = 100_000.0, interval: int = 4, **kw
    ):
        super().__init__(**kw)
        if kind not in KINDS[1:]:
            raise ValueError(f"unknown augmentation {kind!r}; valid: {', '.join(KINDS)}")
        self.kind, self.target, self.speed_images, self.interval = (
            kind,
            float(target),
            float(speed_images),
            int(interval),
        )
        # every replica holds the same values (``observe`` all-reduces before it assigns): "mean" keeps them
        self.p = self.add_weight(shape=(), initializer="zeros", trainable=False, name="p", aggregation="mean")
        # sign(D(real)) summed over this interval's steps and the images they hold (all replicas)
        self.sign_sum = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="sign_sum", aggregation="mean"
        )
        self.sign_count = self.add_weight(
            shape=(), initializer="zeros", trainable=False, name="sign_count", aggregation="mean"
        )
        self.steps = self.add_weight(shape=(), initializer="zeros", trainable=False, name="steps", aggregation="mean")
        # its state is made here, for any input: built, so that fit under tf.distribute (which builds
        # an unbuilt model by calling it on a data batch, the GAN's call taking latents) leaves it be
        self.built = True

    def call(self, images, seed=None):
        if self.kind == "diffaugment":
            return diff_augment(images, seed)
        return ada_augment(images, self.p, seed)

    def observe(self, real_logits) -> None:
        """After a discriminator step: add its reals' sign(D) to the interval's sum; every
        ``interval`` steps move p towards making r_t = target and start a new interval.

        Under tf.distribute the replicas' sums are all-reduced first, so every replica holds the
        same global values and every update is a plain ``where`` (a ``tf.cond`` that assigns
        mirrored variables would need a merge_call inside control flow, which tf.distribute refuses).
        """
        if self.kind != "ada":
            return
        signs = ops.sign(ops.cast(ops.reshape(real_logits, (-1,)), "float32"))
        observed = ops.stack([ops.sum(signs), ops.cast(ops.shape(signs)[0], "float32")])
        if tf.distribute.get_strategy().num_replicas_in_sync > 1:
            observed = tf.distribute.get_replica_context().all_reduce("sum", observed)
        sign_sum, sign_count = self.sign_sum + observed[0], self.sign_count + observed[1]
        steps = self.steps + 1.0
        due = ops.equal(steps % self.interval, 0.0)
        r_t = sign_sum / ops.maximum(sign_count, 1.0)
        moved = ops.clip(self.p + ops.sign(r_t - self.target) * sign_count / self.speed_images, 0.0, 1.0)
        self.p.assign(ops.where(due, moved, self.p))
        self.sign_sum.assign(ops.where(due, 0.0, sign_sum))
        self.sign_count.assign(ops.where(due, 0.0, sign_count))
        self.steps.assign(steps)

    def get_config(self):
        return {
            **super().get_config(),
            "kind": self.kind,
            "target": self.target,
            "speed_images": self.speed_images,
            "interval": self.interval,
        }


# ---- sampling ------------------------------------------------------------------------------------
def _reflect(index, size: int):
    """Integer pixel indices folded into [0, size) by reflection about the edge pixels (numpy's "reflect")."""
    if size == 1:
        return ops.zeros_like(index)
    period = 2 * (size - 1)
    index = ops.mod(index, period)
    return ops.where(index > size - 1, period - index, index)


def sample(images, source_x, source_y, mode: str = "reflect"):
    """Bilinear samples of ``images`` (b, h, w, c) at the source coordinates (b, h', w') in pixels,
    outside the image reflected ("reflect") or zero ("zeros"). Gathers: the gradient is exact."""
    _, height, width, channels = images.shape
    flat = ops.reshape(images, (-1, height * width, channels))
    x0, y0 = ops.floor(source_x), ops.floor(source_y)
    fx, fy = (source_x - x0)[..., None], (source_y - y0)[..., None]
    x0, y0 = ops.cast(x0, "int32"), ops.cast(y0, "int32")
    out = 0.0
    for dy, wy in ((0, 1.0 - fy), (1, fy)):
        for dx, wx in ((0, 1.0 - fx), (1, fx)):
            xi, yi = x0 + dx, y0 + dy
            inside = None
            if mode == "zeros":
                inside = (xi >= 0) & (xi < width) & (yi >= 0) & (yi < height)
                xi, yi = ops.clip(xi, 0, width - 1), ops.clip(yi, 0, height - 1)
            else:
                xi, yi = _reflect(xi, width), _reflect(yi, height)
            index = ops.reshape(yi * width + xi, (ops.shape(flat)[0], -1))
            values = ops.reshape(tf.gather(flat, index, batch_dims=1), (-1, *source_x.shape[1:], channels))
            if inside is not None:
                values = values * ops.cast(inside, values.dtype)[..., None]
            out = out + wx * wy * values
    return out


def warp(images, inverse, mode: str = "reflect"):
    """Apply per-image affine maps: ``inverse`` (b, 3, 3) takes an output pixel's centred
    coordinates (x, y, 1) to the source's."""
    _, height, width, _ = images.shape
    xs = ops.arange(width, dtype="float32") - (width - 1) / 2.0
    ys = ops.arange(height, dtype="float32") - (height - 1) / 2.0
    grid_y, grid_x = ops.meshgrid(ys, xs, indexing="ij")  # (h, w)
    points = ops.stack([grid_x, grid_y, ops.ones_like(grid_x)], axis=0)  # (3, h, w)
    source = ops.einsum("bij,jhw->bihw", inverse, points)
    return sample(images, source[:, 0] + (width - 1) / 2.0, source[:, 1] + (height - 1) / 2.0, mode)


# ---- ADA ---------------------------------------------------------------------------------------------
def _gate(p, batch, seed):
    """1.0 for the images an operation applies to (probability p each), else 0.0: (b,)."""
    return ops.cast(keras.random.uniform((batch,), seed=seed) < p, "float32")


def _matrix(rows):
    """(b, 3, 3) from nine (b,) tensors or numbers, row-major."""
    return ops.stack([ops.stack(row, axis=-1) for row in rows], axis=-2)


def _affine_inverse(batch, side, p, seed):
    """The composed inverse affine map (b, 3, 3) of the blit and geometric operations."""
    zero, one = ops.zeros((batch,)), ops.ones((batch,))

    def scale(sx, sy):  # inverse of scaling by (sx, sy)
        return _matrix([[1.0 / sx, zero, zero], [zero, 1.0 / sy, zero], [zero, zero, one]])

    def rotate(theta):  # inverse of rotating by theta
        c, s = ops.cos(-theta), ops.sin(-theta)
        return _matrix([[c, -s, zero], [s, c, zero], [zero, zero, one]])

    def translate(tx, ty):  # inverse of translating by (tx, ty) pixels
        return _matrix([[one, zero, -tx], [zero, one, -ty], [zero, zero, one]])

    def gate():
        return _gate(p, batch, seed)

    flip = 1.0 - 2.0 * gate() * ops.cast(keras.random.uniform((batch,), seed=seed) < 0.5, "float32")
    quarter = ops.floor(keras.random.uniform((batch,), seed=seed) * 4.0) * gate()
    shift = ops.round((keras.random.uniform((2, batch), seed=seed) * 2.0 - 1.0) * TRANSLATE * side) * gate()
    iso = ops.power(2.0, keras.random.normal((batch,), stddev=LOG2_STD, seed=seed) * gate())
    rotation_p = 1.0 - ops.sqrt(1.0 - ops.minimum(p, 1.0))
    pre = (keras.random.uniform((batch,), seed=seed) * 2.0 - 1.0) * math.pi * _gate(rotation_p, batch, seed)
    aniso = ops.power(2.0, keras.random.normal((batch,), stddev=LOG2_STD, seed=seed) * gate())
    post = (keras.random.uniform((batch,), seed=seed) * 2.0 - 1.0) * math.pi * _gate(rotation_p, batch, seed)
    fraction = keras.random.normal((2, batch), stddev=TRANSLATE, seed=seed) * side * gate()
    inverse = scale(flip, one)  # the operations in order; each multiplies the inverse on the right
    for step in (
        rotate(quarter * math.pi / 2.0),
        translate(shift[0], shift[1]),
        scale(iso, iso),
        rotate(pre),
        scale(aniso, 1.0 / aniso),
        rotate(post),
        translate(fraction[0], fraction[1]),
    ):
        inverse = ops.matmul(inverse, step)
    return inverse


def _colour(batch, channels: int, p, seed):
    """ADA's colour operations as an affine map of the colour (r, g, b) -> A (r, g, b) + t:
    (A (b, 3, 3), t (b, 3)), each operation where its gate is open, in the paper's order. Grey images
    use brightness, contrast and luma flip (which keep grey on the grey axis)."""
    eye = ops.broadcast_to(ops.eye(3), (batch, 3, 3))
    v = ops.ones((3,)) / math.sqrt(3.0)  # the grey axis
    vv = ops.outer(v, v)

    def gate():
        return _gate(p, batch, seed)

    def then(matrix, a, t):  # apply ``matrix`` (b, 3, 3) after (a, t)
        return ops.matmul(matrix, a), ops.einsum("bij,bj->bi", matrix, t)

    a, t = eye, keras.random.normal((batch, 1), stddev=0.2, seed=seed) * gate()[:, None] * ops.ones((1, 3))
    contrast = ops.power(2.0, keras.random.normal((batch,), stddev=0.5, seed=seed) * gate())
    a, t = then(eye * contrast[:, None, None], a, t)
    flip = ops.cast(keras.random.uniform((batch,), seed=seed) < 0.5, "float32") * gate()
    a, t = then(eye - 2.0 * flip[:, None, None] * vv, a, t)
    if channels == 3:
        theta = (keras.random.uniform((batch,), seed=seed) * 2.0 - 1.0) * math.pi * gate()
        c, s = ops.cos(theta)[:, None, None], ops.sin(theta)[:, None, None]
        k = 1.0 / math.sqrt(3.0)
        cross = ops.convert_to_tensor([[0.0, -k, k], [k, 0.0, -k], [-k, k, 0.0]])  # [v]x
        a, t = then(c * eye + s * cross + (1.0 - c) * vv, a, t)  # Rodrigues: rotation about v
        saturation = ops.power(2.0, keras.random.normal((batch,), stddev=1.0, seed=seed) * gate())
        a, t = then(vv + (eye - vv) * saturation[:, None, None], a, t)
    return a, t


def ada_augment(images, p, seed):
    """ADA's bgc pipeline at probability ``p`` (see the module docstring)."""
    images = ops.convert_to_tensor(images)
    batch, side = ops.shape(images)[0], images.shape[1]
    draw, keep = sampling.replica_rows(batch)  # each replica its own parameters under tf.distribute
    augmented = warp(images, keep(_affine_inverse(draw, side, p, seed)))
    a, t = (keep(part) for part in _colour(draw, images.shape[-1], p, seed))
    if images.shape[-1] == 3:
        return ops.einsum("bij,bhwj->bhwi", a, augmented) + t[:, None, None, :]
    # grey x stands for (x, x, x), which the grey operations keep on the grey axis: take r
    return augmented * ops.sum(a[:, 0, :], axis=-1)[:, None, None, None] + t[:, None, None, 0:1]


# ---- DiffAugment ---------------------------------------------------------------------------------------
def diff_augment(images, seed):
    """DiffAugment's "color,translation,cutout" (Zhao et al. 2020), on every image."""
    images = ops.convert_to_tensor(images)
    batch, height, width = ops.shape(images)[0], images.shape[1], images.shape[2]
    draw, keep = sampling.replica_rows(batch)  # each replica its own parameters under tf.distribute

    def uniform():  # (batch, 1, 1, 1)
        return keep(keras.random.uniform((draw, 1, 1, 1), seed=seed))

    def randint(low, high):  # (batch,)
        return keep(keras.random.randint((draw,), low, high, seed=seed))

    images = images + (uniform() - 0.5)
    if images.shape[-1] == 3:
        mean = ops.mean(images, axis=-1, keepdims=True)
        images = (images - mean) * (uniform() * 2.0) + mean
    mean = ops.mean(images, axis=(1, 2, 3), keepdims=True)
    images = (images - mean) * (uniform() + 0.5) + mean
    limit = (int(height * TRANSLATE + 0.5), int(width * TRANSLATE + 0.5))
    shift_y = ops.cast(randint(-limit[0], limit[0] + 1), "float32")
    shift_x = ops.cast(randint(-limit[1], limit[1] + 1), "float32")
    ys = ops.arange(height, dtype="float32")[None, :, None] - shift_y[:, None, None]
    xs = ops.arange(width, dtype="float32")[None, None, :] - shift_x[:, None, None]
    images = sample(images, xs + ops.zeros_like(ys), ys + ops.zeros_like(xs), mode="zeros")
    size = (int(height * 0.5 + 0.5), int(width * 0.5 + 0.5))
    top = randint(0, height + (1 - size[0] % 2)) - size[0] // 2
    left = randint(0, width + (1 - size[1] % 2)) - size[1] // 2
    rows = ops.arange(height)[None, :, None] - top[:, None, None]
    cols = ops.arange(width)[None, None, :] - left[:, None, None]
    cut = (rows >= 0) & (rows < size[0]) & (cols >= 0) & (cols < size[1])
    return images * (1.0 - ops.cast(cut, images.dtype))[..., None]
