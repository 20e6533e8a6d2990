// HTTP and the Cache API for wgpu-infer's browser package (imported by src/web/files.rs through
// wasm-bindgen; it lands in pkg/snippets/). The Rust side decides what to fetch, verifies every
// file (sizes, the safetensors header, JSON) and only then asks for it to be cached, so a
// truncated or corrupt download is never kept.

const CACHE_NAME = "wgpu-infer-models-v1";

function cacheStorage() {
  // Absent outside secure contexts (plain http on a non-localhost origin) and in some workers.
  return typeof caches === "undefined" ? null : caches;
}

/// The cached bytes of `url`, or null (no cache, or not cached).
export async function cacheGet(url) {
  const cs = cacheStorage();
  if (!cs) return null;
  try {
    const cache = await cs.open(CACHE_NAME);
    const hit = await cache.match(url);
    if (!hit) return null;
    return new Uint8Array(await hit.arrayBuffer());
  } catch (e) {
    console.warn(`wgpu-infer: reading the model cache failed for ${url}:`, e);
    return null;
  }
}

/// Stores verified bytes for `url`. A full quota (or no Cache API) only costs a later download.
export async function cachePut(url, bytes) {
  const cs = cacheStorage();
  if (!cs) return false;
  try {
    const cache = await cs.open(CACHE_NAME);
    const headers = { "content-length": String(bytes.byteLength) };
    await cache.put(url, new Response(bytes, { headers }));
    return true;
  } catch (e) {
    console.warn(`wgpu-infer: could not cache ${url}:`, e);
    return false;
  }
}

export async function cacheDelete(url) {
  const cs = cacheStorage();
  if (!cs) return false;
  try {
    return await (await cs.open(CACHE_NAME)).delete(url);
  } catch (e) {
    return false;
  }
}

/// Deletes every cached model file.
export async function cacheClear() {
  const cs = cacheStorage();
  return cs ? await cs.delete(CACHE_NAME) : false;
}

/// Resolves `name` against the folder URL `base` (relative to the page).
export function resolveUrl(base, name) {
  const page = typeof location === "undefined" ? undefined : location.href;
  const folder = base.endsWith("/") ? base : base + "/";
  return new URL(name, new URL(folder, page)).href;
}

/// Downloads `url`. Resolves to { status, statusText, contentType, bytes, expected } where bytes
/// is null unless the status is 2xx (and `maxBytes` allows the Content-Length), and expected is
/// the Content-Length (-1 when unknown or the body is encoded). An HTML answer (a dev server's
/// single-page-app fallback for a missing file) is returned without its body.
/// `progress(loaded, total)` is called as bytes arrive. Rejects on a network failure.
export async function download(url, progress, maxBytes) {
  let resp;
  try {
    resp = await fetch(url, { cache: "no-cache" });
  } catch (e) {
    throw new Error(`${url}: cannot fetch (${e && e.message ? e.message : e})`);
  }
  const encoded = resp.headers.get("content-encoding");
  const len = Number(resp.headers.get("content-length"));
  const expected = !encoded && Number.isFinite(len) && len >= 0 && resp.headers.has("content-length") ? len : -1;
  const contentType = resp.headers.get("content-type") || "";
  const head = { status: resp.status, statusText: resp.statusText, contentType, bytes: null, expected };
  if (!resp.ok || contentType.startsWith("text/html") || (maxBytes >= 0 && expected > maxBytes)) {
    try { await resp.body?.cancel(); } catch (_) { /* already closed */ }
    return head;
  }
  const reader = resp.body ? resp.body.getReader() : null;
  if (!reader) {
    const bytes = new Uint8Array(await resp.arrayBuffer());
    if (progress) progress(bytes.byteLength, expected);
    return { ...head, bytes };
  }
  // Into one buffer when the size is known (no second copy), else chunks joined at the end.
  let buf = null;
  if (expected >= 0) {
    try {
      buf = new Uint8Array(expected);
    } catch (e) {
      throw new Error(`${url}: ${expected} bytes do not fit in this page's memory (${e && e.message ? e.message : e})`);
    }
  }
  const chunks = [];
  let loaded = 0;
  for (;;) {
    let r;
    try {
      r = await reader.read();
    } catch (e) {
      throw new Error(`${url}: download failed after ${loaded} bytes (${e && e.message ? e.message : e})`);
    }
    if (r.done) break;
    const c = r.value;
    if (maxBytes >= 0 && loaded + c.byteLength > maxBytes) {
      try { await reader.cancel(); } catch (_) { /* already closed */ }
      return { ...head, bytes: null, expected: loaded + c.byteLength };
    }
    if (buf && loaded + c.byteLength <= buf.byteLength) {
      buf.set(c, loaded);
    } else {
      if (buf) { chunks.push(buf.subarray(0, loaded)); buf = null; }
      chunks.push(c);
    }
    loaded += c.byteLength;
    if (progress) progress(loaded, expected);
  }
  let bytes;
  if (buf) {
    bytes = loaded === buf.byteLength ? buf : buf.subarray(0, loaded);
  } else {
    bytes = new Uint8Array(loaded);
    let o = 0;
    for (const c of chunks) { bytes.set(c, o); o += c.byteLength; }
  }
  return { ...head, bytes };
}

/// The bytes of one entry of a user-given file map: ArrayBuffer, a typed array, or a Blob/File
/// (what a drop or an <input type=file> gives).
export async function entryBytes(v) {
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  if (typeof Blob !== "undefined" && v instanceof Blob) return new Uint8Array(await v.arrayBuffer());
  return null;
}
