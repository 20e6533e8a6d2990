// The demo site: semantic search (BERT), streaming generation (GPT-2), ViT top-k and YOLO boxes
// on a canvas, all through the package's public API (pkg/wgpu_infer.js). URL parameters
// override the defaults: ?image=URL (the picture), ?bert= ?gpt2= ?vit= ?yolo= (model folders).
// window.demo exposes the same actions for tests/browser.rs and tools/bench_web.sh.
import init, { Device, Bert, Gpt2, Vit, Yolo } from "./pkg/wgpu_infer.js";

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
for (const k of ["bert", "gpt2", "vit", "yolo"]) if (params.has(k)) $(`${k}-url`).value = params.get(k);
const BOX_COLOR = "#ff00ff"; // tests/browser.rs looks for it in a screenshot

let device;
const loaded = new Map();
const files = new Map(); // url -> { loaded, total } for the progress bar

function status(msg, isError = false) {
  const s = $("status");
  s.textContent = msg;
  s.className = isError ? "error" : "";
}

function fmtBytes(n) {
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(0)} KiB`;
}

function onProgress(e) {
  files.set(e.url, e);
  let done = 0, total = 0, cached = true;
  for (const f of files.values()) {
    done += f.loaded;
    total += f.total >= 0 ? f.total : f.loaded;
    cached &&= f.cached;
  }
  $("progress").hidden = false;
  $("progress-label").textContent = cached ? "From the cache" : `Downloading ${e.file}`;
  $("progress-bytes").textContent = `${fmtBytes(done)} / ${fmtBytes(total)}`;
  $("progress-bar").value = total ? done / total : 0;
}

async function model(cls, url, opts = {}) {
  const key = `${cls.name}:${url}`;
  if (!loaded.has(key)) {
    files.clear();
    status(`Loading ${url}…`);
    const t0 = performance.now();
    const p = cls.load(device, url, { ...opts, onProgress });
    loaded.set(key, p);
    try {
      await p;
    } catch (e) {
      loaded.delete(key);
      throw e;
    }
    status(`Loaded ${url} in ${(performance.now() - t0).toFixed(0)} ms`);
  }
  return loaded.get(key);
}

/// Runs `f`, showing its error (the rejected promise's message) instead of throwing.
async function guarded(f) {
  try {
    return await f();
  } catch (e) {
    status(e instanceof Error ? e.message : String(e), true);
    throw e;
  }
}

// ---------------------------------------------------------------- search
async function runSearch() {
  return guarded(async () => {
    const bert = await model(Bert, $("bert-url").value);
    const corpus = $("search-corpus").value.split("\n").map((s) => s.trim()).filter(Boolean);
    const query = $("search-query").value;
    const t0 = performance.now();
    const vecs = await bert.embed([query, ...corpus], { normalize: true, truncate: true });
    const ms = performance.now() - t0;
    const q = vecs[0];
    const ranked = corpus
      .map((text, i) => ({ text, score: vecs[i + 1].reduce((s, v, k) => s + v * q[k], 0) }))
      .sort((a, b) => b.score - a.score);
    $("search-results").replaceChildren(...ranked.map((r) => {
      const li = document.createElement("li");
      li.textContent = `${r.score.toFixed(3)}  ${r.text}`;
      return li;
    }));
    $("search-timing").textContent = `${corpus.length + 1} texts embedded in ${ms.toFixed(0)} ms`;
    return ranked;
  });
}

// ---------------------------------------------------------------- generation
async function runGenerate() {
  return guarded(async () => {
    const gpt2 = await model(Gpt2, $("gpt2-url").value);
    const out = $("gpt2-out");
    out.textContent = $("gpt2-prompt").value;
    const t0 = performance.now();
    let first = null;
    const gen = await gpt2.generate($("gpt2-prompt").value, {
      maxNewTokens: Number($("gpt2-tokens").value),
      temperature: Number($("gpt2-temp").value),
      onToken: (text) => {
        first ??= performance.now() - t0;
        out.textContent += text;
      },
    });
    const n = gen.tokens.length;
    $("gpt2-timing").textContent =
      `${n} tokens; first after ${first?.toFixed(0)} ms; ${(n / (gen.decodeMs / 1e3)).toFixed(1)} tokens/s decoding`;
    return gen;
  });
}

// ---------------------------------------------------------------- images
let picture = null; // ImageData of the current image

async function loadPicture(blob) {
  const bmp = await createImageBitmap(blob);
  const c = $("canvas");
  c.width = bmp.width;
  c.height = bmp.height;
  const ctx = c.getContext("2d");
  ctx.drawImage(bmp, 0, 0);
  picture = ctx.getImageData(0, 0, bmp.width, bmp.height);
}

async function defaultPicture() {
  if (!picture) {
    const url = params.get("image") || "models/assets/bus.jpg";
    const r = await fetch(url);
    if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
    await loadPicture(await r.blob());
  }
  return picture;
}

function redraw() {
  $("canvas").getContext("2d").putImageData(picture, 0, 0);
}

async function runVit() {
  return guarded(async () => {
    const img = await defaultPicture();
    const vit = await model(Vit, $("vit-url").value);
    const t0 = performance.now();
    const top = await vit.classify(img, { topK: 5 });
    $("vision-timing").textContent = `ViT: ${(performance.now() - t0).toFixed(0)} ms`;
    $("vit-results").replaceChildren(...top.map((p) => {
      const li = document.createElement("li");
      li.textContent = `${p.label} (${(p.score * 100).toFixed(1)} %)`;
      return li;
    }));
    return top;
  });
}

async function runYolo() {
  return guarded(async () => {
    const img = await defaultPicture();
    const yolo = await model(Yolo, $("yolo-url").value);
    const t0 = performance.now();
    const dets = await yolo.detect(img, { conf: 0.25, iou: 0.7, imgsz: 640 });
    $("vision-timing").textContent = `YOLO: ${dets.length} boxes in ${(performance.now() - t0).toFixed(0)} ms`;
    redraw();
    const ctx = $("canvas").getContext("2d");
    ctx.lineWidth = 3;
    ctx.strokeStyle = BOX_COLOR;
    ctx.font = "14px sans-serif";
    for (const d of dets) {
      const [x1, y1, x2, y2] = d.box;
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      const label = `${d.label} ${d.score.toFixed(2)}`;
      const w = ctx.measureText(label).width + 6;
      ctx.fillStyle = BOX_COLOR;
      ctx.fillRect(x1, Math.max(0, y1 - 18), w, 18);
      ctx.fillStyle = "#fff";
      ctx.fillText(label, x1 + 3, Math.max(13, y1 - 5));
    }
    return dets;
  });
}

$("search-run").onclick = () => runSearch().catch(() => {});
$("gpt2-run").onclick = () => runGenerate().catch(() => {});
$("vit-run").onclick = () => runVit().catch(() => {});
$("yolo-run").onclick = () => runYolo().catch(() => {});
$("image-file").onchange = async (e) => {
  const f = e.target.files[0];
  if (!f) return;
  await guarded(() => loadPicture(f)).catch(() => {});
};

const ready = (async () => {
  await init();
  device = await Device.create();
  const i = device.info();
  $("adapter").innerHTML = "";
  const b = document.createElement("b");
  b.textContent = i.name || "WebGPU adapter";
  $("adapter").append("Adapter: ", b, ` (${i.backend}, ${i.deviceType}); features: `);
  const code = document.createElement("code");
  code.textContent = i.features.join(", ") || "none";
  $("adapter").append(code);
  status("Ready.");
  return i;
})();
ready.catch((e) => {
  $("adapter").textContent = e instanceof Error ? e.message : String(e);
  $("adapter").className = "card error";
});

window.demo = { ready, runSearch, runGenerate, runVit, runYolo };
