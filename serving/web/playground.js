// The playground: a latentforge generator running in this page with onnxruntime-web (WASM, SIMD,
// threads when the page is cross-origin isolated). The controls come from the model card's inputs
// and their roles (feeds.js), never from a family's name. The files come from beside the page:
// model/model_card.json, model/<graph>.onnx (checked against the card's sha256) and web/ort/.
import * as ort from "./ort/ort.wasm.min.mjs";
import * as feeds from "./feeds.js";
import { SAMPLER } from "./sampler.js";
import { sha256Hex } from "./sha256.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const state = { card: null, generator: null, encoder: null, token: sessionStorage.getItem("latentforge-token") || "" };
const roles = {}; // role -> input spec (the first of each role)
let busy = false;
let pending = false;
let animation = null;

// The page's API for tests and benches (tests/serving/test_playground.py, bench/browser.py: state,
// feeds, ort, render, last), as window.latentforge: not
// window.playground, which names the <main id="playground"> element until this module has run
window.latentforge = { state, feeds, ort, render, run, idle, last: null, ready: null };

class PageError extends Error {}

function show(message) {
  $("message").textContent = message;
  $("message").hidden = false;
  $("status").textContent = "Not running.";
}

async function fetchModelFile(name, asJson) {
  const headers = state.token ? { Authorization: `Bearer ${state.token}` } : {};
  const response = await fetch(`model/${name}`, { headers, cache: "no-cache" });
  if (response.status === 401) throw Object.assign(new PageError("token"), { unauthorized: true });
  if (!response.ok) throw new PageError(`model/${name}: the server answered ${response.status}; is the model served here?`);
  if (!asJson) return new Uint8Array(await response.arrayBuffer());
  const text = await response.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new PageError("The model card (model/model_card.json) is not JSON; re-export the model.");
  }
}

// The card, once it is one this page can run: card_version 2 with a generator graph and the
// portable sampler (one seed, one picture); a clear message otherwise
function checkCard(card) {
  const reexport = `re-export it: latentforge export --train-run-id ${card?.train_run_id || "<its train run>"}`;
  if (!card || typeof card !== "object" || card.card_version !== 2 || !card.graphs?.generator?.inputs) {
    throw new PageError(`This page cannot read the model card (card version ${card?.card_version ?? "?"}); ${reexport}.`);
  }
  if (card.sampler !== SAMPLER) {
    throw new PageError(
      `This model was exported before the portable sampler (its card names ${card.sampler || "none"}), so its seeds ` +
        `would not match latentforge generate here; ${reexport}.`,
    );
  }
  if (!card.files || !card.output_shape || !card.value_range) throw new PageError(`The model card lacks files, output_shape or value_range; ${reexport}.`);
  return card;
}

async function session(card, graph) {
  const file = card.graphs[graph].file;
  const bytes = await fetchModelFile(file, false);
  const digest = await sha256Hex(bytes);
  if (digest !== card.files[file]) {
    throw new PageError(`${file} does not match the sha256 in the model card; the file was changed or corrupted. Re-export or re-download it.`);
  }
  return ort.InferenceSession.create(bytes, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
}

function configureRuntime() {
  const wanted = Number(params.get("threads") || 0);
  const cores = Math.min(navigator.hardwareConcurrency || 1, 4);
  ort.env.wasm.numThreads = crossOriginIsolated ? wanted || cores : 1;
  ort.env.wasm.wasmPaths = new URL("./ort/", import.meta.url).href;
  ort.env.logLevel = "error";
}

async function load() {
  configureRuntime();
  let card;
  try {
    card = checkCard(await fetchModelFile("model_card.json", true));
  } catch (error) {
    if (error.unauthorized) return askToken();
    throw error;
  }
  state.card = card;
  state.generator = await session(card, "generator");
  if (card.graphs.encoder) state.encoder = await session(card, "encoder");
  feeds.inputsOf(card).forEach((spec) => {
    roles[spec.role] ??= spec;
  });
  build(card);
  $("token-form").hidden = true;
  $("playground").hidden = false;
  const threads = ort.env.wasm.numThreads;
  $("status").textContent =
    `${card.model} · ${card.output_shape.join("×")} · onnxruntime-web ${ort.env.versions?.web ?? ""} WASM, ` +
    `${threads} thread${threads > 1 ? "s" : ""}${crossOriginIsolated ? " (cross-origin isolated)" : ""}`;
  await render();
}

function askToken() {
  $("status").textContent = "The model needs a token.";
  $("token-form").hidden = false;
  $("token").focus();
  return new Promise((resolve, reject) => {
    $("token-form").addEventListener(
      "submit",
      (event) => {
        event.preventDefault();
        state.token = $("token").value.trim();
        sessionStorage.setItem("latentforge-token", state.token);
        load().then(resolve, reject);
      },
      { once: true },
    );
  });
}

// Controls from the card: a box shows when the card has what it needs
function build(card) {
  const has = {
    latent: Boolean(roles.latent),
    label: Boolean(roles.label),
    truncation: Boolean(roles.truncation),
    ztruncation: Boolean(roles.latent) && !roles.truncation,
    noise: Boolean(roles.noise),
    styles: Boolean(card.styles && roles.mixing),
    encoder: Boolean(state.encoder),
  };
  state.has = has;
  showFor(has);
  $("model-name").textContent = card.model;
  if (has.label) {
    const names = card.label_classes?.length ? card.label_classes : [...Array(roles.label.default.classes).keys()].map(String);
    $("label").replaceChildren(new Option("each in turn", ""), ...names.map((name, i) => new Option(name, String(i))));
  }
  if (has.styles) buildMixing(card.styles);
  if (has.encoder) buildSliders();
  const rerender = () => render();
  for (const id of ["seed", "grid", "label", "psi", "ztrunc", "ztrunc-on", "mix-rows", "mix-cols", "seed-b", "steps"]) {
    $(id).addEventListener("input", rerender);
  }
  document.querySelectorAll("input[name=mode]").forEach((n) => n.addEventListener("change", () => showFor(state.has)));
  document.querySelectorAll("input[name=mode], input[name=noise], input[name=method]").forEach((n) => n.addEventListener("change", rerender));
  $("psi").addEventListener("input", () => ($("psi-value").textContent = Number($("psi").value).toFixed(2)));
  $("ztrunc").addEventListener("input", () => ($("ztrunc-value").textContent = Number($("ztrunc").value).toFixed(2)));
  $("random-seed").addEventListener("click", () => {
    $("seed").value = String(crypto.getRandomValues(new Uint32Array(1))[0]);
    render();
  });
  $("animate").addEventListener("click", toggleAnimation);
  $("download").addEventListener("click", download);
}

// A box shows when the card has what it needs (data-needs) and, for data-modes, in those modes
function showFor(has) {
  document.querySelectorAll("[data-needs], [data-modes]").forEach((node) => {
    const needs = !node.dataset.needs || has[node.dataset.needs];
    const modes = !node.dataset.modes || node.dataset.modes.split(" ").includes(mode());
    node.hidden = !(needs && modes);
  });
}

function buildMixing(styles) {
  const order = ["coarse", "middle", "fine"].filter((g) => styles.groups[g]);
  $("mix-groups").replaceChildren(
    ...order.map((group) => {
      const label = document.createElement("label");
      const box = Object.assign(document.createElement("input"), { type: "checkbox", value: group, checked: group === "coarse" });
      box.dataset.layers = styles.groups[group].join(",");
      box.addEventListener("change", () => {
        syncLayersFromGroups();
        render();
      });
      label.append(box, ` ${group} (${styles.groups[group].join(", ")})`);
      return label;
    }),
  );
  $("mix-layers").replaceChildren(
    ...[...Array(styles.num_ws).keys()].map((i) => {
      const label = document.createElement("label");
      const box = Object.assign(document.createElement("input"), { type: "checkbox", value: String(i) });
      box.addEventListener("change", () => render());
      label.append(box, ` ${i}`);
      return label;
    }),
  );
  syncLayersFromGroups();
}

function syncLayersFromGroups() {
  const chosen = new Set();
  $("mix-groups").querySelectorAll("input:checked").forEach((box) => box.dataset.layers.split(",").forEach((i) => chosen.add(i)));
  $("mix-layers").querySelectorAll("input").forEach((box) => (box.checked = chosen.has(box.value)));
}

function buildSliders() {
  const shown = Math.min(8, feeds.sizeOf(roles.latent));
  $("sliders").replaceChildren(
    ...[...Array(shown).keys()].map((i) => {
      const label = document.createElement("label");
      const range = Object.assign(document.createElement("input"), { type: "range", min: "-3", max: "3", step: "0.01", value: "0" });
      range.id = `z${i}`;
      range.dataset.index = String(i);
      range.addEventListener("input", () => {
        state.sliderLatent[i] = Number(range.value);
        render();
      });
      label.append(`z[${i}] `, range);
      return label;
    }),
  );
  $("seed").addEventListener("input", () => (state.sliderLatent = null));
  $("drop").addEventListener("click", () => $("file").click());
  $("drop").addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      $("file").click();
    }
  });
  $("file").addEventListener("change", () => $("file").files[0] && reconstruct($("file").files[0]));
  $("drop").addEventListener("dragover", (event) => event.preventDefault());
  $("drop").addEventListener("drop", (event) => {
    event.preventDefault();
    const file = event.dataTransfer.files[0];
    if (file) reconstruct(file);
  });
}

function seed() {
  const value = Math.floor(Number($("seed").value));
  return Number.isFinite(value) && value >= 0 && value < 2 ** 32 ? value : 0;
}

function seedList(id) {
  return $(id)
    .value.split(/[\s,]+/)
    .filter(Boolean)
    .map(Number)
    .filter((s) => Number.isInteger(s) && s >= 0 && s < 2 ** 32)
    .slice(0, 8);
}

function mode() {
  return document.querySelector("input[name=mode]:checked").value;
}

function radio(name) {
  return document.querySelector(`input[name=${name}]:checked`)?.value;
}

// The feed of the samples grid: what latentforge generate -n N --seed s feeds (the card's
// defaults), with the page's controls on top
function samplesFeed(n, s) {
  const inputs = feeds.inputsOf(state.card);
  const feed = feeds.defaultFeed(inputs, n, s);
  applyControls(feed, n, s);
  return feed;
}

function applyControls(feed, n, s) {
  if (roles.label && $("label").value !== "") feed[roles.label.name] = feeds.constant(roles.label, n, Number($("label").value));
  if (roles.truncation) feed[roles.truncation.name] = feeds.constant(roles.truncation, n, Number($("psi").value));
  if (roles.noise && radio("noise") === "zero") feed[roles.noise.name] = feeds.constant(roles.noise, n, 0);
  if (roles.latent && !roles.truncation && $("ztrunc-on").checked) {
    const z = feed[roles.latent.name];
    z.data = feeds.truncate(z.data, Number($("ztrunc").value), s);
  }
}

function interpolationFeed() {
  const dim = feeds.sizeOf(roles.latent);
  const steps = Math.min(32, Math.max(2, Math.floor(Number($("steps").value)) || 8));
  const a = feeds.latents(seed(), 1, dim);
  const b = feeds.latents(Math.floor(Number($("seed-b").value)) >>> 0, 1, dim);
  const feed = feeds.defaultFeed(feeds.inputsOf(state.card), steps, seed());
  feed[roles.latent.name] = { data: feeds.interpolate(a, b, steps, radio("method")), dims: [steps, dim] };
  applyControls(feed, steps, seed());
  return { feed, n: steps, columns: steps };
}

function mixingFeed() {
  const rows = seedList("mix-rows");
  const cols = seedList("mix-cols");
  if (!rows.length || !cols.length) throw new PageError("Give at least one row seed and one column seed.");
  const mask = new Float32Array(state.card.styles.num_ws);
  $("mix-layers").querySelectorAll("input:checked").forEach((box) => (mask[Number(box.value)] = 1));
  const feed = feeds.mixFeed(state.card, rows, cols, mask, Number($("psi").value), radio("noise"));
  return { feed, n: (rows.length + 1) * (cols.length + 1), columns: cols.length + 1, blankCorner: true };
}

function slidersFeed() {
  const dim = feeds.sizeOf(roles.latent);
  if (!state.sliderLatent) {
    state.sliderLatent = feeds.latents(seed(), 1, dim);
    document.querySelectorAll("#sliders input").forEach((range) => (range.value = state.sliderLatent[Number(range.dataset.index)].toFixed(2)));
  }
  const z = Float32Array.from(state.sliderLatent);
  const feed = feeds.defaultFeed(feeds.inputsOf(state.card), 1, seed());
  feed[roles.latent.name] = { data: z, dims: [1, dim] };
  applyControls(feed, 1, seed());
  return { feed, n: 1, columns: 1 };
}

function request() {
  const m = mode();
  if (m === "mixing") return mixingFeed();
  if (m === "interpolation") return interpolationFeed();
  if (m === "sliders") return slidersFeed();
  const side = Number($("grid").value);
  return { feed: samplesFeed(side * side, seed()), n: side * side, columns: side };
}

// Run the generator on a feed ({name: {data, dims}}): the first output's data and dims
export async function run(feed, sess = state.generator) {
  const tensors = {};
  for (const [name, value] of Object.entries(feed)) {
    tensors[name] = new ort.Tensor(value.data instanceof Int32Array ? "int32" : "float32", value.data, value.dims);
  }
  const output = state.card.graphs[sess === state.encoder ? "encoder" : "generator"].outputs[0].name;
  const result = await sess.run(tensors, [output]);
  return result[output];
}

// Resolves with the last drawing once the model has loaded and no drawing runs or waits
async function idle() {
  await window.latentforge.ready;
  while (busy || pending) await new Promise((resolve) => setTimeout(resolve, 5));
  return window.latentforge.last;
}

// Draw the current controls' images; a change while one runs redraws once it is done
export async function render() {
  if (!state.card) return;
  if (busy) {
    pending = true;
    return;
  }
  busy = true;
  try {
    const started = performance.now();
    const { feed, n, columns, blankCorner } = request();
    const out = await run(feed);
    const [, h, w, c] = out.dims;
    const pixels = feeds.toUint8(out.data, state.card.value_range);
    if (blankCorner) pixels.fill(0, 0, h * w * c);
    draw(feeds.gridRGBA(pixels, n, h, w, c, columns));
    const at = performance.now(); // since the page's navigation started: bench/browser.py's time to the first drawing
    window.latentforge.last = { pixels, n, h, w, c, mode: mode(), seed: seed(), ms: at - started, at };
    $("timing").textContent = `${n} image${n > 1 ? "s" : ""} in ${(performance.now() - started).toFixed(1)} ms`;
    $("message").hidden = true;
  } catch (error) {
    show(error instanceof PageError ? error.message : `The model failed to run: ${error.message ?? error}`);
  } finally {
    busy = false;
  }
  if (pending) {
    pending = false;
    await render();
  }
}

function draw(picture) {
  const canvas = $("canvas");
  if (canvas.width !== picture.width || canvas.height !== picture.height) {
    canvas.width = picture.width; // resizing clears and reallocates the canvas: only when the grid changes
    canvas.height = picture.height;
  }
  canvas.getContext("2d").putImageData(new ImageData(picture.data, picture.width, picture.height), 0, 0);
}

function toggleAnimation() {
  const button = $("animate");
  if (animation) {
    clearInterval(animation.timer);
    animation = null;
    button.setAttribute("aria-pressed", "false");
    button.textContent = "Animate";
    return render();
  }
  button.setAttribute("aria-pressed", "true");
  button.textContent = "Stop";
  animation = { frame: 0, timer: setInterval(animationFrame, 80) };
}

async function animationFrame() {
  if (busy || !animation) return;
  const { feed, n } = interpolationFeed();
  const k = animation.frame % n;
  const one = {};
  for (const [name, value] of Object.entries(feed)) {
    const size = value.data.length / n;
    one[name] = { data: value.data.slice(k * size, (k + 1) * size), dims: [1, ...value.dims.slice(1)] };
  }
  busy = true;
  try {
    const out = await run(one);
    const [, h, w, c] = out.dims;
    draw(feeds.gridRGBA(feeds.toUint8(out.data, state.card.value_range), 1, h, w, c, 1));
  } finally {
    busy = false;
  }
  animation && (animation.frame += 1);
}

// An image through the encoder (its first output: the VAE's posterior mean) and the generator,
// shown beside the original; its latent goes to the sliders
async function reconstruct(file) {
  const [height, width, channels] = state.card.output_shape;
  let bitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    return show(`${file.name} is not an image this browser can decode; use a PNG or JPEG.`);
  }
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext("2d");
  context.fillStyle = "white";
  context.fillRect(0, 0, width, height);
  context.drawImage(bitmap, 0, 0, width, height);
  const rgba = context.getImageData(0, 0, width, height).data;
  const unit = new Float32Array(width * height * channels);
  for (let p = 0; p < width * height; p++) {
    if (channels === 1) unit[p] = (0.299 * rgba[4 * p] + 0.587 * rgba[4 * p + 1] + 0.114 * rgba[4 * p + 2]) / 255;
    else for (let k = 0; k < 3; k++) unit[3 * p + k] = rgba[4 * p + k] / 255;
  }
  const encoded = await run({ [feeds.inputsOf(state.card, "encoder")[0].name]: { data: unit, dims: [1, height, width, channels] } }, state.encoder);
  state.sliderLatent = Float32Array.from(encoded.data);
  document.querySelectorAll("#sliders input").forEach((range) => (range.value = state.sliderLatent[Number(range.dataset.index)].toFixed(2)));
  document.querySelector("input[name=mode][value=sliders]").checked = true;
  showFor(state.has);
  await render();
  const decoded = window.latentforge.last;
  const original = new Uint8ClampedArray(unit.length);
  unit.forEach((v, i) => (original[i] = Math.round(v * 255)));
  const both = new Uint8ClampedArray(2 * unit.length);
  both.set(original, 0);
  both.set(decoded.pixels, unit.length);
  draw(feeds.gridRGBA(both, 2, height, width, channels, 2));
}

function download() {
  $("canvas").toBlob((blob) => {
    const link = Object.assign(document.createElement("a"), {
      href: URL.createObjectURL(blob),
      download: `${state.card.model}-${mode()}-seed${seed()}.png`,
    });
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  }, "image/png");
}

window.latentforge.ready = load().then(
  () => true,
  (error) => {
    show(error instanceof PageError ? error.message : `The playground could not start: ${error.message ?? error}`);
    return false;
  },
);
