"""The layout of the families that grow from a 7x7 or 4x4 start (ProGAN, StyleGAN): their
resolutions and channels, and StyleGAN's styles and packed noise. Pure Python, no TensorFlow: the
signatures, the model card and the docs read it without building a network."""

from __future__ import annotations

W_DIM = 128  # StyleGAN's w


def base(side: int) -> int:
    """The lowest resolution: 7 for sides 7 * 2**k (7 -> 14 -> 28), else 4 (StyleGAN's 4x4 constant:
    4 -> 8 -> 16 -> 32)."""
    return 7 if side % 7 == 0 else 4


def resolutions(image_shape) -> list[int]:
    """The sides of the blocks, each double the one before: 7, 14, 28 for 28x28 images; 4, 8, 16,
    32, 64 for 64x64 (the image side must be 7 * 2**k or 4 * 2**k, at least 14 or 8)."""
    side = int(image_shape[0])
    out = [base(side)]
    while out[-1] < side:
        out.append(out[-1] * 2)
    if out[-1] != side or image_shape[0] != image_shape[1] or len(out) < 2:
        raise ValueError(
            f"needs square images of side 7 * 2**k or 4 * 2**k (28, 32, 56, 64, 112, 128), got {tuple(image_shape)}"
        )
    return out


def channels(image_shape, width: int) -> list[int]:
    """Channels per resolution: ``width`` at full size, doubling per halving, at most 4 * width."""
    sides = resolutions(image_shape)
    return [min(width * 2 ** (len(sides) - 1 - i), 4 * width) for i in range(len(sides))]


def num_ws(image_shape) -> int:
    """Number of per-layer styles: one convolution at the base, two per later block, plus the
    last to-image layer (each to-image layer shares its w with the next block's first conv)."""
    return 2 * len(resolutions(image_shape))


def noise_layout(image_shape) -> list[tuple[int, int]]:
    """(offset, side) of each convolution's noise map in the packed noise vector, in layer order."""
    sides = resolutions(image_shape)
    per_conv = [sides[0]] + [s for s in sides[1:] for _ in range(2)]
    layout, offset = [], 0
    for side in per_conv:
        layout.append((offset, side))
        offset += side * side
    return layout


def noise_size(image_shape) -> int:
    offset, side = noise_layout(image_shape)[-1]
    return offset + side * side


def w_index(image_shape) -> list[tuple[str, int]]:
    """(layer name, index into ws) for every layer that takes a style, in order."""
    sides = resolutions(image_shape)
    out, index = [(f"conv{sides[0]}_1", 0)], 0
    for side in sides[1:]:
        out.append((f"to_image{side // 2}", index + 1))
        out += [(f"conv{side}_0", index + 1), (f"conv{side}_1", index + 2)]
        index += 2
    out.append((f"to_image{sides[-1]}", index + 1))
    return out


def layer_groups(image_shape) -> dict[str, list[int]]:
    """The StyleGAN paper's coarse / middle / fine styles, as indices into ws: the styles in thirds
    from the constant's end (28x28: [0, 1], [2, 3], [4, 5]: 7x7 and the first 14x14 layer; the
    second 14x14 layer and the first 28x28; the last 28x28 layer and the last to-image)."""
    count = num_ws(image_shape)
    cut = [round(count * i / 3) for i in range(4)]
    return {name: list(range(cut[i], cut[i + 1])) for i, name in enumerate(("coarse", "middle", "fine"))}


def style_layout(image_shape, w_avg) -> dict:
    """What a runtime needs to drive the exported generator's controls (the model card's
    ``styles``): num_ws, w's size, which layer reads which w, the coarse/middle/fine groups, the
    packed noise layout, and w_avg."""
    convs = [name for name, _ in w_index(image_shape) if name.startswith("conv")]
    return {
        "num_ws": num_ws(image_shape),
        "w_dim": W_DIM,
        "w_index": [{"layer": name, "w": index} for name, index in w_index(image_shape)],
        "groups": layer_groups(image_shape),
        "noise_size": noise_size(image_shape),
        "noise_layout": [
            {"layer": name, "offset": offset, "side": side}
            for name, (offset, side) in zip(convs, noise_layout(image_shape))
        ],
        "w_avg": [float(v) for v in w_avg],
    }
