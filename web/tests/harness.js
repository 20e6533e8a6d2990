// The page tests/browser.rs drives (through web/tests/browser.mjs): window.runStep(step) makes
// one call of the package's public JS API and returns plain JSON (numbers as arrays), or
// { error } with the rejected promise's message.
import init, { Device, Bert, Gpt2, Vit, Yolo, clearModelCache, version } from "../pkg/wgpu_infer.js";

let device = null;
const models = new Map();
const classes = { bert: Bert, gpt2: Gpt2, vit: Vit, yolo: Yolo };

let deviceOptions; // set by a { op: "device", options } step before anything else
async function getDevice() {
  if (!device) device = await Device.create(deviceOptions);
  return device;
}

/// Loads (once per page) the model of `step`; progress events are collected into `events`.
async function model(step, events) {
  const key = JSON.stringify([step.family, step.model, step.files || null, step.load || {}]);
  if (!models.has(key)) {
    const opts = { ...(step.load || {}), onProgress: (e) => events.push(e) };
    // `files`: load from a { name: ArrayBuffer } map of those files instead of the URL.
    const source = step.files ? await fileMap(step.model, step.files) : step.model;
    models.set(key, await classes[step.family].load(await getDevice(), source, opts));
  }
  return models.get(key);
}

/// An ImageData from raw RGBA bytes ({ raw, width, height }) or an image file the browser
/// decodes ({ src }).
async function image(spec) {
  if (spec.raw) {
    const buf = await (await fetch(spec.raw)).arrayBuffer();
    return new ImageData(new Uint8ClampedArray(buf), spec.width, spec.height);
  }
  if (spec.src) {
    const bmp = await createImageBitmap(await (await fetch(spec.src)).blob());
    const c = new OffscreenCanvas(bmp.width, bmp.height);
    const ctx = c.getContext("2d");
    ctx.drawImage(bmp, 0, 0);
    return ctx.getImageData(0, 0, bmp.width, bmp.height);
  }
  if (spec.clamped) return { ...spec.value, data: new Uint8ClampedArray(spec.value.data) };
  return spec.value; // anything else, as given (bad-input tests)
}

/// A file map { name: ArrayBuffer } fetched from a folder URL (what a drop would give).
async function fileMap(url, names) {
  const map = {};
  for (const n of names) {
    const r = await fetch(url + n);
    if (r.ok) map[n] = await r.arrayBuffer();
  }
  return map;
}

const ops = {
  device: async (s) => {
    deviceOptions = s.options;
    return (await getDevice()).info();
  },
  version: async () => version(),
  clearCache: async () => clearModelCache(),
  load: async (s, ev) => {
    const source = s.files ? await fileMap(s.model, s.files) : s.model;
    const m = await classes[s.family].load(await getDevice(), source, { ...(s.load || {}), onProgress: (e) => ev.push(e) });
    return m.info();
  },
  embed: async (s, ev) => {
    const vecs = await (await model(s, ev)).embed(s.texts, s.options);
    return vecs.map((v) => Array.from(v));
  },
  rerank: async (s, ev) => (await model(s, ev)).rerank(s.query, s.texts, s.options),
  generate: async (s, ev) => {
    const streamed = [];
    const out = await (await model(s, ev)).generate(s.prompt, {
      ...(s.options || {}),
      onToken: (text, id) => { streamed.push([text, id]); },
    });
    return { ...out, streamed };
  },
  classify: async (s, ev) => (await model(s, ev)).classify(await image(s.image), s.options),
  logits: async (s, ev) => Array.from(await (await model(s, ev)).logits(await image(s.image))),
  embedImage: async (s, ev) => Array.from(await (await model(s, ev)).embed(await image(s.image))),
  detect: async (s, ev) => (await model(s, ev)).detect(await image(s.image), s.options),
  // Raw calls with arbitrary arguments (bad-input tests): method on a loaded model.
  call: async (s, ev) => {
    const m = await model(s, ev);
    const args = [];
    for (const a of s.args || []) args.push(a && a.image ? await image(a.image) : a);
    return m[s.method](...args);
  },
};

window.runStep = async (step) => {
  const events = [];
  const t0 = performance.now();
  try {
    const value = await ops[step.op](step, events);
    return { ok: true, value, ms: performance.now() - t0, events };
  } catch (e) {
    return { ok: false, error: e instanceof Error ? e.message : String(e), ms: performance.now() - t0, events };
  }
};

try {
  await init();
  window.harnessReady = true;
} catch (e) {
  window.harnessError = String(e && e.stack || e);
}
