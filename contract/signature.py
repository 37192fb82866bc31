"""A network's signature: named, typed inputs with roles, and named outputs.

"A generator is a function from named inputs to an image." Each input says what it is
(its **role**) and how to fill it when a caller does not (its **default**), so everything that
runs an exported network (parity, INT8 calibration, the MLflow signature, the runtime, the
micro-batcher, the HTTP API, the edge script) reads the signature, never a family's name.
The model card stores it as JSON (``to_dict`` / ``from_dict``). Pure Python and numpy.

Roles: ``latent`` (seeded standard normal; the first latent is the latents a seed stands for,
``contract.sampler``, so a seed gives the same image everywhere), ``label`` (class index, int32), ``truncation`` (a
scalar per image, e.g. StyleGAN's psi), ``mixing`` (a per-image crossover point or mask),
``noise`` (per-layer noise; a graph input because ONNX cannot draw it), ``image``, ``scalar``
(any other per-image number).

Defaults (``default``), each a dict with ``kind``:
  {"kind": "normal"}                     seeded standard normal
  {"kind": "classes", "classes": C}      0, 1, ..., C-1, 0, 1, ... (every class in turn)
  {"kind": "constant", "value": v}       v everywhere
  {"kind": "uniform", "low": a, "high": b}   seeded uniform (images: [0, 1])
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from contract import sampler as draws

ROLES = ("latent", "label", "truncation", "mixing", "noise", "image", "scalar")
DTYPES = ("float32", "int32")
DEFAULT_KINDS = ("normal", "classes", "constant", "uniform")


@dataclass(frozen=True)
class TensorSpec:
    """One input (or output) of an exported network.

    Args:
        name: the tensor's name in every runtime (SavedModel signature, ONNX graph, HTTP).
        shape: without the batch axis, e.g. (100,) for a latent, () for one number per image.
        role: one of ``ROLES`` (outputs: "image", "latent" or "scalar").
        dtype: "float32" or "int32".
        default: how to fill it when a caller gives nothing (see the module docstring).
        bounds: (low, high) a caller's value must lie in (scalars: truncation, mixing, ...), or None.
        about: one line for help texts and the HTTP schema.
    """

    name: str
    shape: tuple[int, ...]
    role: str
    dtype: str = "float32"
    default: dict = field(default_factory=lambda: {"kind": "normal"})
    bounds: tuple[float, float] | None = None
    about: str = ""

    def __post_init__(self):
        if self.role not in ROLES:
            raise ValueError(f"input '{self.name}': unknown role '{self.role}'; valid: {', '.join(ROLES)}")
        if self.dtype not in DTYPES:
            raise ValueError(f"input '{self.name}': dtype must be one of {', '.join(DTYPES)}, got {self.dtype}")
        if self.default.get("kind") not in DEFAULT_KINDS:
            raise ValueError(f"input '{self.name}': default kind must be one of {', '.join(DEFAULT_KINDS)}")
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        if self.bounds is not None:
            object.__setattr__(self, "bounds", (float(self.bounds[0]), float(self.bounds[1])))

    @property
    def classes(self) -> int:
        """Number of classes of a label input (0 for other inputs)."""
        return int(self.default.get("classes", 0)) if self.default.get("kind") == "classes" else 0

    def to_dict(self) -> dict:
        out: dict[str, object] = {
            "name": self.name,
            "shape": [None, *self.shape],
            "dtype": self.dtype,
            "role": self.role,
        }
        out["default"] = dict(self.default)
        if self.bounds is not None:
            out["bounds"] = list(self.bounds)
        if self.about:
            out["about"] = self.about
        return out

    @classmethod
    def from_dict(cls, data: dict) -> TensorSpec:
        shape = list(data["shape"])
        if not shape or shape[0] is not None:
            raise ValueError(f"input '{data.get('name')}': shape must start with the batch axis (null)")
        return cls(
            name=data["name"],
            shape=tuple(shape[1:]),
            role=data["role"],
            dtype=data.get("dtype", "float32"),
            default=dict(data.get("default") or {"kind": "normal"}),
            bounds=tuple(data["bounds"]) if data.get("bounds") is not None else None,
            about=data.get("about", ""),
        )


@dataclass(frozen=True)
class Signature:
    """A network's exported interface: the SavedModel signature name, inputs and outputs
    (the batch axis dynamic everywhere)."""

    name: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def __post_init__(self):
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "outputs", tuple(self.outputs))
        names = [t.name for t in (*self.inputs, *self.outputs)]
        if len(set(names)) != len(names):
            raise ValueError(f"signature '{self.name}': tensor names must be unique, got {names}")

    def input(self, role: str) -> TensorSpec | None:
        """The first input with ``role``, or None."""
        return next((t for t in self.inputs if t.role == role), None)

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(t.name for t in self.outputs)

    def to_dict(self) -> dict:
        return {
            "signature": self.name,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
        }

    @classmethod
    def from_dict(cls, data: dict) -> Signature:
        return cls(
            data["signature"],
            tuple(TensorSpec.from_dict(t) for t in data["inputs"]),
            tuple(TensorSpec.from_dict(t) for t in data["outputs"]),
        )


def primary_latent(inputs) -> int | None:
    """Position of the first input with role ``latent`` (the one a seed stands for), or None."""
    return next((i for i, spec in enumerate(inputs) if spec.role == "latent"), None)


def default_value(spec: TensorSpec, n: int, seed: int = 0, stream: int | None = None, sampler=None) -> np.ndarray:
    """``spec``'s default for ``n`` items: (n, *shape) of its dtype. Random kinds draw with
    ``sampler`` (``contract.sampler``: the portable one, or None for numpy's ``default_rng``)
    from ``seed``: the latents a seed stands for when ``stream`` is None, else the stream of
    the input at position ``stream``, so adding an input never changes another's numbers."""
    shape, kind = (n, *spec.shape), spec.default["kind"]
    if kind == "normal":
        value = draws.draw_normal(sampler, seed, stream, shape)
    elif kind == "uniform":
        low, high = spec.default.get("low", 0.0), spec.default.get("high", 1.0)
        value = draws.draw_uniform(sampler, seed, stream, shape, low, high)
    elif kind == "classes":
        value = np.broadcast_to((np.arange(n) % max(spec.classes, 1)).reshape((n,) + (1,) * len(spec.shape)), shape)
    else:  # constant
        value = np.full(shape, spec.default.get("value", 0.0))
    return np.ascontiguousarray(value, dtype=spec.dtype)


def coerce(spec: TensorSpec, value, n: int) -> np.ndarray:
    """A caller's value for ``spec`` as (n, *shape): one value per item, or one for all.

    Raises:
        ValueError: wrong shape, a non-integer for an int32 input, a value outside the bounds
            or the label classes. The message names the input.
    """
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"input '{spec.name}' must be numeric, got {value!r}")
    if array.ndim == 0 or array.shape == spec.shape:  # one value (or one tensor) for every item
        array = np.broadcast_to(array, (n, *spec.shape))
    elif array.shape != (n, *spec.shape):
        raise ValueError(
            f"input '{spec.name}' must have shape {list(spec.shape)} or {[n, *spec.shape]}, got {list(array.shape)}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"input '{spec.name}' must be finite")
    if spec.dtype == "int32" and not np.all(np.equal(np.mod(array, 1), 0)):
        raise ValueError(f"input '{spec.name}' takes integers, got {value!r}")
    low, high = spec.bounds if spec.bounds is not None else (-np.inf, np.inf)
    if spec.classes:
        low, high = 0, spec.classes - 1
    if np.any(array < low) or np.any(array > high):
        raise ValueError(f"input '{spec.name}' must be between {low:g} and {high:g}, got {value!r}")
    return np.ascontiguousarray(array, dtype=spec.dtype)


def random_value(spec: TensorSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    """Varied, valid values for checks (parity) and calibration (INT8): normal latents and
    noise, uniform [0, 1] images, random classes, uniform within the bounds for scalars."""
    shape = (n, *spec.shape)
    if spec.classes:
        return rng.integers(0, spec.classes, shape).astype(spec.dtype)
    if spec.role in ("latent", "noise"):
        return rng.standard_normal(shape).astype(spec.dtype)
    if spec.role == "image":
        return rng.random(shape).astype(spec.dtype)
    if spec.bounds is not None:
        low, high = spec.bounds
        if spec.dtype == "int32":
            return rng.integers(int(low), int(high) + 1, shape).astype(spec.dtype)
        return rng.uniform(low, high, shape).astype(spec.dtype)
    return default_value(spec, n)


def random_feed(inputs, n: int, seed: int) -> dict[str, np.ndarray]:
    """``random_value`` for every input, from one seeded generator."""
    rng = np.random.default_rng(seed)
    return {spec.name: random_value(spec, n, rng) for spec in inputs}


def generator(latent_dim: int, image_shape, classes: int = 0) -> Signature:
    """The usual generator: latent ``z`` (batch, latent_dim) [, ``label`` (batch,) int32 when
    ``classes``] -> ``image`` (batch, h, w, c)."""
    inputs = [TensorSpec("z", (latent_dim,), "latent", about="standard normal latent")]
    if classes:
        default = {"kind": "classes", "classes": int(classes)}
        inputs.append(TensorSpec("label", (), "label", "int32", default, about="class index; default: each in turn"))
    image = TensorSpec("image", tuple(image_shape), "image", default={"kind": "uniform"})
    return Signature("generate", tuple(inputs), (image,))


def styled_generator(latent_dim: int, image_shape, num_ws: int, noise_size: int, w_dim: int) -> Signature:
    """A style-based generator: ``z``, ``z2`` (batch, latent_dim), ``mix`` (batch, num_ws: 1 where a
    layer takes its style from z2), ``psi`` (batch, 1: truncation towards the average w, 1 = none),
    ``noise`` (batch, noise_size: the per-layer noise maps packed; zeros = deterministic) ->
    ``image`` (batch, h, w, c) and ``ws`` (batch, num_ws, w_dim), the styles it used."""
    inputs = (
        TensorSpec("z", (latent_dim,), "latent", about="standard normal latent"),
        TensorSpec("z2", (latent_dim,), "latent", about="second latent, for the layers that mix takes from it"),
        TensorSpec(
            "mix",
            (num_ws,),
            "mixing",
            default={"kind": "constant", "value": 0.0},
            bounds=(0.0, 1.0),
            about="per layer: 1 = style from z2, 0 = from z",
        ),
        TensorSpec(
            "psi",
            (1,),
            "truncation",
            default={"kind": "constant", "value": 1.0},
            bounds=(0.0, 1.0),
            about="truncation towards the average w; 1 = none",
        ),
        TensorSpec("noise", (noise_size,), "noise", about="per-layer noise maps, packed; zeros = deterministic"),
    )
    outputs = (
        TensorSpec("image", tuple(image_shape), "image", default={"kind": "uniform"}),
        TensorSpec("ws", (num_ws, w_dim), "latent"),
    )
    return Signature("generate", inputs, outputs)


def synthesis(image_shape, num_ws: int, noise_size: int, w_dim: int) -> Signature:
    """A style-based generator's synthesis network: ``ws`` + ``noise`` -> ``image``."""
    inputs = (
        TensorSpec("ws", (num_ws, w_dim), "latent", about="one style vector (w) per layer"),
        TensorSpec("noise", (noise_size,), "noise", about="per-layer noise maps, packed; zeros = deterministic"),
    )
    image = TensorSpec("image", tuple(image_shape), "image", default={"kind": "uniform"})
    return Signature("synthesize", inputs, (image,))


def encoder(image_shape, latent_dim: int, outputs: tuple[str, ...]) -> Signature:
    """``image`` (batch, h, w, c) in [0, 1] -> latent outputs, (batch, latent_dim) each."""
    image = TensorSpec("image", tuple(image_shape), "image", default={"kind": "uniform"}, about="image in [0, 1]")
    return Signature("encode", (image,), tuple(TensorSpec(n, (latent_dim,), "latent") for n in outputs))


def default_feed(inputs, n: int, seed: int = 0, sampler=None) -> dict[str, np.ndarray]:
    """Every input filled by its default for ``n`` items (``default_value``): the primary latent
    is the latents ``seed`` stands for, the input at position p draws from its own stream."""
    primary = primary_latent(inputs)
    return {
        spec.name: default_value(spec, n, seed, None if position == primary else position, sampler)
        for position, spec in enumerate(inputs)
    }


def call(network, signature: Signature, feed: dict):
    """Run a Keras network on a feed (inputs in the signature's order), inference mode; its first
    output (the image, for a generator)."""
    values = [feed[spec.name] for spec in signature.inputs]
    result = network(values[0] if len(values) == 1 else values, training=False)
    return result[0] if isinstance(result, (list, tuple)) else result
