// The portable sampler (contract/sampler.py, version "lf-hash32-v1"): the same seeded draws as
// latentforge's Python, bit for bit, so one seed is one picture in the page and on the command line.
export const SAMPLER = "lf-hash32-v1";
export const TRUNCATION = 0x7fffffff; // the stream of the truncation trick's redraws
const GOLDEN = 0x9e3779b9;

export function mix(x) {
  x = x >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

function key(seed, stream) {
  return mix(mix(seed >>> 0) ^ mix((stream + GOLDEN) >>> 0)) >>> 0;
}

// count uint32 draws of (seed, stream) at indices start, start + 1, ...
export function bits(seed, stream, count, start = 0) {
  const k = key(seed, stream);
  const out = new Uint32Array(count);
  for (let i = 0; i < count; i++) out[i] = mix((mix(((start + i) >>> 0) ^ k) + k) >>> 0);
  return out;
}

// Float32Array of count uniform draws in (low, high)
export function uniform(seed, stream, count, low = 0, high = 1) {
  const raw = bits(seed, stream, count);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = low + (high - low) * ((raw[i] + 0.5) / 4294967296);
  return out;
}

// Float32Array of count standard normal draws (Box-Muller on pairs of uniforms); start: the index
// of the first normal draw (draw k uses uniforms 2k and 2k + 1)
export function normal(seed, stream, count, start = 0) {
  const raw = bits(seed, stream, 2 * count, 2 * start);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const u1 = (raw[2 * i] + 0.5) / 4294967296;
    const u2 = (raw[2 * i + 1] + 0.5) / 4294967296;
    out[i] = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
  return out;
}

// The truncation trick's redraws (contract/sampler.py truncate): every entry of z (a Float32Array)
// beyond threshold in magnitude is drawn again until it falls inside; in round r, entry j takes
// normal draw r * z.length + j of stream TRUNCATION. Returns a new Float32Array.
export function truncate(z, threshold, seed) {
  const out = Float32Array.from(z);
  const limit = Math.fround(threshold);
  for (let round = 0; round < 10000; round++) {
    let outside = false;
    for (let j = 0; j < out.length; j++) if (Math.abs(out[j]) > limit) outside = true;
    if (!outside) break;
    const draws = normal(seed, TRUNCATION, out.length, round * out.length);
    for (let j = 0; j < out.length; j++) if (Math.abs(out[j]) > limit) out[j] = draws[j];
  }
  for (let j = 0; j < out.length; j++) out[j] = Math.min(limit, Math.max(-limit, out[j]));
  return out;
}
