// The browser benchmark (bench.html): each workload of a spec (tools/bench_web.sh writes one;
// `wgpu-infer bench --web-peer` runs the same spec natively) is loaded cold, called once (plan
// compiles and autotuning included), then timed over `reps` warm calls; the median is kept.
// window.demo.runAll(spec) / runCachedLoads(spec) are what the script drives.
import init, { Device, Bert, Gpt2, Vit, Yolo, clearModelCache } from "./pkg/wgpu_infer.js";

const classes = { bert: Bert, gpt2: Gpt2, vit: Vit, yolo: Yolo };
let device;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function imageData(url) {
  const bmp = await createImageBitmap(await (await fetch(url)).blob());
  const c = new OffscreenCanvas(bmp.width, bmp.height);
  const ctx = c.getContext("2d");
  ctx.drawImage(bmp, 0, 0);
  return ctx.getImageData(0, 0, bmp.width, bmp.height);
}

/// One call of workload `w` on model `m`; resolves to the items it produced (for throughput).
async function call(w, m, input) {
  switch (w.family) {
    case "bert":
      await m.embed(w.texts, { truncate: true });
      return w.texts.length;
    case "gpt2": {
      const g = await m.generate(w.prompt, { maxNewTokens: w.maxNewTokens, temperature: 0, stopAtEos: false });
      return g.tokens.length;
    }
    case "vit":
      await m.classify(input, { topK: 5 });
      return 1;
    case "yolo":
      await m.detect(input, {});
      return 1;
  }
  throw new Error(`unknown family ${w.family}`);
}

function row(cells) {
  const tr = document.createElement("tr");
  for (const c of cells) {
    const td = document.createElement("td");
    td.textContent = c;
    tr.append(td);
  }
  document.querySelector("#results tbody").append(tr);
}

async function loadSpec(spec) {
  if (spec) return spec;
  const url = new URLSearchParams(location.search).get("spec");
  if (!url) throw new Error("no spec: open bench.html?spec=URL");
  return (await fetch(url)).json();
}

/// Every workload from a cleared cache: load (downloads), first call, warm calls.
async function runAll(spec) {
  spec = await loadSpec(spec);
  await clearModelCache();
  const out = [];
  for (const w of spec.workloads) {
    document.getElementById("status").textContent = `running ${w.name}…`;
    const input = w.image ? await imageData(w.image) : null;
    let t = performance.now();
    const m = await classes[w.family].load(device, w.model, w.dtype ? { dtype: w.dtype } : {});
    const loadMs = performance.now() - t;
    t = performance.now();
    const items = await call(w, m, input);
    const firstMs = performance.now() - t;
    const times = [];
    for (let i = 0; i < (spec.reps || 3); i++) {
      t = performance.now();
      await call(w, m, input);
      times.push(performance.now() - t);
    }
    const warm = median(times);
    const r = { name: w.name, loadMs, firstMs, medianMs: warm, items, unit: w.unit, times };
    out.push(r);
    row([w.name, loadMs.toFixed(0), firstMs.toFixed(0), warm.toFixed(1),
      `${(items / (warm / 1e3)).toFixed(2)} ${w.unit}`]);
    m.free();
  }
  document.getElementById("status").textContent = "done";
  return out;
}

/// Load times once the files are in the Cache API (run after a reload of the page).
async function runCachedLoads(spec) {
  spec = await loadSpec(spec);
  const out = [];
  for (const w of spec.workloads) {
    const events = [];
    const t = performance.now();
    const m = await classes[w.family].load(device, w.model, { onProgress: (e) => events.push(e) });
    const ms = performance.now() - t;
    out.push({ name: w.name, loadMs: ms, allCached: events.length > 0 && events.every((e) => e.cached) });
    m.free();
  }
  return out;
}

const ready = (async () => {
  await init();
  device = await Device.create();
  const i = device.info();
  document.getElementById("adapter").textContent = `Adapter: ${i.name} (${i.backend}); features: ${i.features.join(", ")}`;
  return i;
})();

window.demo = {
  ready,
  info: async () => (await ready, device.info()),
  runAll: (spec) => runAll(spec),
  runCachedLoads: (spec) => runCachedLoads(spec),
};
