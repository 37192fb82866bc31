// What the playground feeds a generator, read from its model card (contract/signature.py, mirrored):
// every input's default for n images and a seed, the latents a seed stands for, truncation,
// interpolation, the style-mixing grid, and the 8-bit pictures, exactly as latentforge's Python
// fills and draws them, so one seed is one picture in the page and on the command line.
// Nothing here knows a family's name: inputs are found by their role.
import { normal, truncate, uniform } from "./sampler.js";

export const GRID_PADDING = 2; // contract/images.py grid's border

// The card's inputs of a graph ("generator", "encoder"): [{name, shape: [null, ...], dtype, role, default}]
export function inputsOf(card, graph = "generator") {
  return card.graphs[graph].inputs;
}

export function sizeOf(spec) {
  return spec.shape.slice(1).reduce((a, b) => a * b, 1);
}

// Position of the first input with role, or -1
export function find(inputs, role) {
  return inputs.findIndex((spec) => spec.role === role);
}

// An input's default for n images (signature.default_value): the latents a seed stands for at the
// primary latent (position null: stream 0), the input at position p from stream p + 1.
export function defaultValue(spec, n, seed, position) {
  const size = sizeOf(spec);
  const stream = position === null ? 0 : position + 1;
  const kind = (spec.default || { kind: "normal" }).kind;
  let values;
  if (kind === "normal") values = normal(seed, stream, n * size);
  else if (kind === "uniform") values = uniform(seed, stream, n * size, spec.default.low ?? 0, spec.default.high ?? 1);
  else if (kind === "classes") {
    values = new Float64Array(n * size);
    const classes = Math.max(spec.default.classes, 1);
    for (let i = 0; i < n; i++) values.fill(i % classes, i * size, (i + 1) * size);
  } else values = new Float64Array(n * size).fill(spec.default.value ?? 0);
  return tensorData(spec, values);
}

function tensorData(spec, values) {
  return spec.dtype === "int32" ? Int32Array.from(values) : Float32Array.from(values);
}

// {name: {data, dims}} for every input, each from its default (signature.default_feed)
export function defaultFeed(inputs, n, seed) {
  const primary = find(inputs, "latent");
  const feed = {};
  inputs.forEach((spec, position) => {
    feed[spec.name] = {
      data: defaultValue(spec, n, seed, position === primary ? null : position),
      dims: [n, ...spec.shape.slice(1)],
    };
  });
  return feed;
}

// One value for every image (a psi, a class, zero noise): a full tensor of the input's shape
export function constant(spec, n, value) {
  return { data: tensorData(spec, new Float64Array(n * sizeOf(spec)).fill(value)), dims: [n, ...spec.shape.slice(1)] };
}

// The latents seed stands for: Float32Array of n * dim (contract/images.py latents)
export function latents(seed, n, dim) {
  return normal(seed, 0, n * dim);
}

export { truncate };

function dot(a, b) {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i] * b[i];
  return sum;
}

// Spherical interpolation between two latents (contract/images.py slerp)
export function slerp(a, b, t) {
  const cos = dot(a, b) / Math.sqrt(dot(a, a) * dot(b, b));
  const omega = Math.acos(Math.min(1, Math.max(-1, cos)));
  const out = new Float32Array(a.length);
  if (omega < 1e-6) {
    for (let i = 0; i < a.length; i++) out[i] = (1 - t) * a[i] + t * b[i];
    return out;
  }
  const wa = Math.sin((1 - t) * omega) / Math.sin(omega);
  const wb = Math.sin(t * omega) / Math.sin(omega);
  for (let i = 0; i < a.length; i++) out[i] = wa * a[i] + wb * b[i];
  return out;
}

// steps latents from a to b, ends included, concatenated (contract/images.py interpolate)
export function interpolate(a, b, steps, method = "slerp") {
  const out = new Float32Array(steps * a.length);
  for (let s = 0; s < steps; s++) {
    const t = steps === 1 ? 0 : s / (steps - 1);
    let row;
    if (method === "slerp") row = slerp(a, b, t);
    else {
      row = new Float32Array(a.length);
      for (let i = 0; i < a.length; i++) row[i] = (1 - t) * a[i] + t * b[i];
    }
    out.set(row, s * a.length);
  }
  return out;
}

// The style-mixing grid (serving/styles.py mix_feed): (rows + 1) x (cols + 1) images, row by row:
// the corner (blanked by the caller), the column sources along the top, the row sources down the
// left, and in each cell the row's styles with the layers in mask taken from the column's. One
// noise draw for every image (the first row seed's), or zero noise; psi for every image.
export function mixFeed(card, rows, cols, mask, psi, noise) {
  const inputs = inputsOf(card);
  const latentPositions = inputs.map((s, i) => (s.role === "latent" ? i : -1)).filter((i) => i >= 0);
  const [zSpec, z2Spec] = latentPositions.map((i) => inputs[i]);
  const dim = sizeOf(zSpec);
  const source = new Map([...rows, ...cols].map((seed) => [seed, latents(seed, 1, dim)]));
  const n = (rows.length + 1) * (cols.length + 1);
  const first = new Float32Array(n * dim);
  const second = new Float32Array(n * dim);
  const mixSpec = inputs[find(inputs, "mixing")];
  const width = sizeOf(mixSpec);
  const masks = new Float32Array(n * width);
  let k = 0;
  for (const r of [null, ...rows]) {
    for (const c of [null, ...cols]) {
      const own = r !== null ? r : c !== null ? c : rows[0];
      const both = r !== null && c !== null;
      first.set(source.get(own), k * dim);
      second.set(source.get(both ? c : own), k * dim);
      if (both) masks.set(mask, k * width);
      k += 1;
    }
  }
  const feed = defaultFeed(inputs, n, rows[0]);
  feed[zSpec.name] = { data: first, dims: [n, dim] };
  feed[z2Spec.name] = { data: second, dims: [n, dim] };
  feed[mixSpec.name] = { data: masks, dims: [n, width] };
  const noisePosition = find(inputs, "noise");
  if (noisePosition >= 0) {
    const spec = inputs[noisePosition];
    const size = sizeOf(spec);
    const one = noise === "zero" ? new Float32Array(size) : normal(rows[0], noisePosition + 1, size);
    const data = new Float32Array(n * size);
    for (let i = 0; i < n; i++) data.set(one, i * size);
    feed[spec.name] = { data, dims: [n, size] };
  }
  const truncation = find(inputs, "truncation");
  if (truncation >= 0) feed[inputs[truncation].name] = constant(inputs[truncation], n, psi);
  return feed;
}

// float images in the card's value range -> Uint8ClampedArray of 8-bit pixels (images.to_uint8)
export function toUint8(data, valueRange) {
  const out = new Uint8ClampedArray(data.length);
  const tanh = valueRange === "tanh";
  for (let i = 0; i < data.length; i++) {
    const unit = tanh ? (data[i] + 1) * 0.5 : data[i];
    out[i] = Math.min(255, Math.max(0, roundHalfEven(unit * 255)));
  }
  return out;
}

function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r; // numpy's rint
}

// n images (n, h, w, c) of 8-bit pixels -> RGBA pixels of their grid (contract/images.py grid:
// row-major, columns = ceil(sqrt(n)) unless given, a black border of GRID_PADDING)
export function gridRGBA(pixels, n, h, w, c, columns = 0, padding = GRID_PADDING) {
  columns = columns || Math.max(1, Math.ceil(Math.sqrt(n)));
  const rows = Math.ceil(n / columns);
  const width = columns * (w + padding) + padding;
  const height = rows * (h + padding) + padding;
  const out = new Uint8ClampedArray(width * height * 4);
  for (let i = 3; i < out.length; i += 4) out[i] = 255;
  for (let k = 0; k < n; k++) {
    const top = padding + Math.floor(k / columns) * (h + padding);
    const left = padding + (k % columns) * (w + padding);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const from = ((k * h + y) * w + x) * c;
        const to = ((top + y) * width + left + x) * 4;
        out[to] = pixels[from];
        out[to + 1] = pixels[from + (c > 1 ? 1 : 0)];
        out[to + 2] = pixels[from + (c > 1 ? 2 : 0)];
      }
    }
  }
  return { data: out, width, height };
}
