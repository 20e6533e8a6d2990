// Runs a job in headless Chromium (WebGPU through SwiftShader) and prints its results as JSON.
//
//   node web/tests/browser.mjs JOB.json
//
// JOB: {
//   mounts: { "/url-prefix/": "/dir/on/disk", ... },   // served over http://127.0.0.1:<port>
//   page: "/tests/harness.html",                       // what to open (default)
//   webgpu: true,                                      // false: no --enable-unsafe-webgpu
//   hideGpu: false,                                    // true: navigator.gpu is undefined
//   steps: [ { op: ..., ... }, ... ],                  // run by window.runStep in the page
//   screenshot: { path, selector }                     // optional, after the steps
//   spaFallback: "/prefix/"                            // missing files there answer 200 text/html,
//                                                      // as a single-page-app dev server does
// }
// "/" is always mounted on web/. Output: { results: [...], served: { path: count }, console }.
// Used by tests/browser.rs and tools/bench_web.sh; needs `npm ci` in web/ (playwright-core)
// and Chromium (apt-get install chromium; CHROMIUM=/path overrides /usr/bin/chromium).

import { createServer } from "node:http";
import { createReadStream, readFileSync, statSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { extname, join, normalize, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const webDir = normalize(join(here, ".."));

let chromium;
try {
  ({ chromium } = await import("playwright-core"));
} catch (e) {
  console.error("browser.mjs: playwright-core is missing: run `npm ci` in web/ (npm registry)");
  process.exit(3);
}
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
if (!existsSync(executablePath)) {
  console.error(`browser.mjs: no Chromium at ${executablePath}: apt-get install -y chromium (or set CHROMIUM)`);
  process.exit(3);
}

const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const mounts = Object.entries({ ...(job.mounts || {}), "/": webDir })
  .sort((a, b) => b[0].length - a[0].length);
const types = {
  ".html": "text/html", ".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css",
  ".wasm": "application/wasm", ".json": "application/json", ".png": "image/png",
  ".jpg": "image/jpeg", ".txt": "text/plain", ".ts": "text/plain",
};
const served = {};

const server = createServer((req, res) => {
  const path = decodeURIComponent(new URL(req.url, "http://x").pathname);
  const m = mounts.find(([prefix]) => path.startsWith(prefix));
  let file = m ? normalize(join(m[1], path.slice(m[0].length))) : null;
  if (file && !file.startsWith(normalize(m[1]))) file = null;
  let st = null;
  try { st = file && statSync(file); } catch (_) { st = null; }
  if (st && st.isDirectory()) {
    file = join(file, "index.html");
    try { st = statSync(file); } catch (_) { st = null; }
  }
  if ((!st || !st.isFile()) && job.spaFallback && path.startsWith(job.spaFallback)) {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end("<!doctype html><title>app</title><div id=root></div>");
    return;
  }
  if (!st || !st.isFile()) {
    res.writeHead(404, { "content-type": "text/plain" });
    res.end("not found");
    return;
  }
  served[path] = (served[path] || 0) + 1;
  res.writeHead(200, {
    "content-type": types[extname(file)] || "application/octet-stream",
    "content-length": st.size,
    "cache-control": "no-store",
  });
  createReadStream(file).pipe(res);
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const origin = `http://127.0.0.1:${server.address().port}`;

const args = [
  "--no-sandbox", "--disable-quic", "--no-first-run", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
];
if (job.webgpu !== false) args.push("--enable-unsafe-webgpu");
// A persistent profile in a fresh directory: storage (the Cache API) lives on disk as for a real
// user; an in-memory (incognito) context refuses entries of a few hundred MB.
const profile = mkdtempSync(join(tmpdir(), "wgpu-infer-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath, headless: true, args, viewport: { width: 1200, height: 1400 },
});
const consoleLines = [];
let code = 0;
try {
  if (job.hideGpu) {
    await context.addInitScript(() => {
      Object.defineProperty(Navigator.prototype, "gpu", { get: () => undefined, configurable: true });
    });
  }
  const page = await context.newPage();
  page.on("console", (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => consoleLines.push(`pageerror: ${e.message}`));
  const open = async () => {
    await page.goto(origin + (job.page || "/tests/harness.html"));
    await page.waitForFunction(() => window.harnessReady === true || window.harnessError || window.demo, null, { timeout: 60000 });
    const err = await page.evaluate(async () => {
      if (window.harnessError) return window.harnessError;
      if (window.demo) {
        try { await window.demo.ready; } catch (e) { return String(e && e.message || e); }
      }
      return null;
    });
    if (err) throw new Error(`the page failed to start: ${err}`);
  };
  await open();
  const results = [];
  for (const step of job.steps || []) {
    if (step.op === "reload") {
      await open();
      results.push({ ok: true });
      continue;
    }
    const t0 = Date.now();
    const r = step.op === "demo"
      // The demo page's own actions (web/demo.js): { op: "demo", fn: "runYolo" }.
      ? await page.evaluate(async (s) => {
          const t = performance.now();
          try {
            return { ok: true, value: await window.demo[s.fn](), ms: performance.now() - t };
          } catch (e) {
            return { ok: false, error: e instanceof Error ? e.message : String(e), ms: performance.now() - t };
          }
        }, step)
      : await page.evaluate((s) => window.runStep(s), step);
    r.wallMs = Date.now() - t0;
    results.push(r);
  }
  // { path, selector }: a screenshot of one element (e.g. the demo's canvas), else the page.
  if (job.screenshot) {
    const { path, selector } = job.screenshot;
    if (selector) await page.locator(selector).screenshot({ path });
    else await page.screenshot({ path, fullPage: true });
  }
  process.stdout.write(JSON.stringify({ results, served, console: consoleLines }) + "\n");
} catch (e) {
  console.error(`browser.mjs: ${e.stack || e}`);
  for (const l of consoleLines) console.error(`  ${l}`);
  code = 1;
} finally {
  await context.close();
  server.close();
  rmSync(profile, { recursive: true, force: true });
}
process.exit(code);
