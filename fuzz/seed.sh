#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the committed fixtures plus a few hand-made edge cases.
# Needs python3 (standard library only). Safe to re-run: files are named by content.
set -euo pipefail
cd "$(dirname "$0")"
python3 - <<'PY'
import glob, hashlib, json, os, struct

root = ".."
fixtures = os.path.join(root, "tests", "fixtures")

def put(target, data):
    d = os.path.join("corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)

def read_st(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    header = json.loads(b[8:8 + n])
    return header, b[8 + n:]

def pack(tensors, meta=None, pad=0):
    """tensors: list of (name, dtype, shape, bytes) -> safetensors bytes."""
    header, data, off = {}, b"", 0
    if meta is not None:
        header["__metadata__"] = meta
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(raw)]}
        data += raw
        off += len(raw)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * pad
    return struct.pack("<Q", len(h)) + h + data

WEIGHTS_MAX = 64 * 1024      # -max_len of safetensors_weights
MODEL_MAX = 192 * 1024       # -max_len of weight_resolution

# Real files: whole (when small enough) and as small subsets that keep their naming schemes
# (bert. prefix, gamma/beta, f16, ViT/GPT-2/YOLO names) under the weights target's max_len.
for path in sorted(glob.glob(os.path.join(fixtures, "*", "*", "model.safetensors"))):
    raw = open(path, "rb").read()
    header, data = read_st(path)
    meta = header.pop("__metadata__", None)
    items = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
    if len(raw) <= MODEL_MAX and "/bert/" in path:
        put("weight_resolution", raw)
    subset, size = [], 0
    for name, info in sorted(items, key=lambda kv: kv[1]["data_offsets"][1] - kv[1]["data_offsets"][0]):
        s, e = info["data_offsets"]
        if size + (e - s) > WEIGHTS_MAX // 2:
            continue
        subset.append((name, info["dtype"], info["shape"], data[s:e]))
        size += e - s
    small = pack(subset, meta)
    put("safetensors_weights", small)
    put("weight_resolution", small)

# Hand-made edge cases.
f32 = lambda *v: struct.pack(f"<{len(v)}f", *v)
cases = [
    pack([]),                                                    # no tensors
    pack([], meta={"format": "pt"}),
    pack([("scalar", "F32", [], f32(1.5))]),                     # rank 0 loads as [1]
    pack([("empty", "F32", [0, 1 << 60], b"")]),                 # zero elements, huge dim
    pack([("a.LayerNorm.gamma", "F32", [2], f32(1, 2)),
          ("a.LayerNorm.beta", "F32", [2], f32(0, 0)),
          ("h.0.ln_1.gamma", "F32", [1], f32(1))]),
    pack([("bert.x.weight", "F16", [2], struct.pack("<2e", 1.0, -2.0)),
          ("x.weight", "BF16", [2], b"\x80\x3f\x00\x40")]),     # prefixed and plain
    pack([("f64", "F64", [2], struct.pack("<2d", 1e300, -1.0))]),  # f64 beyond f32 range
    pack([("big", "F32", [1], f32(1e6))]),                       # beyond f16 range
    pack([("nan16", "F16", [2], b"\x00\x7e\x00\x3c")]),          # f16 NaN, 1.0
    pack([("inf", "F32", [1], struct.pack("<I", 0x7F800000))]),
    pack([("ids", "I64", [3], struct.pack("<3q", 0, 7, -1))]),
    pack([("ids", "I64", [1], struct.pack("<q", 1 << 40))]),
    pack([("ids", "I32", [2], struct.pack("<2i", 3, 4)),
          ("u", "U32", [1], struct.pack("<I", 0xFFFFFFFF)),
          ("b", "U8", [3], b"\x01\x02\x03"),
          ("flag", "BOOL", [1], b"\x01"),
          ("h", "I16", [1], b"\x01\x00")]),
    pack([("embeddings.word_embeddings.weight", "F32", [1, 1], f32(0.5)),
          ("wte.weight", "F32", [1, 1], f32(0.5))]),
    pack([("x", "F32", [1], f32(1))], pad=7),                    # padded header
]
# A header that claims a 2^60-element tensor over a few bytes of data: must be refused.
h = json.dumps({"huge": {"dtype": "F32", "shape": [1 << 60], "data_offsets": [0, 1 << 62]}}).encode()
cases.append(struct.pack("<Q", len(h)) + h + b"\0" * 16)
# Offsets that overflow once added to the header length.
h = json.dumps({"a": {"dtype": "U8", "shape": [2**61 - 1], "data_offsets": [0, 2**61 - 1]}}).encode()
cases.append(struct.pack("<Q", len(h)) + h)
for c in cases:
    put("safetensors_weights", c)

# Configs: every fixture config plus variants around each check.
cfgs = sorted(glob.glob(os.path.join(fixtures, "**", "config.json"), recursive=True))
base = {}
for path in cfgs:
    text = open(path).read()
    put("config_parse", text)
    c = json.loads(text)
    if "model_type" in c:          # (1_Pooling/config.json has none)
        base.setdefault(c["model_type"], c)
def variant(kind, **kw):
    c = dict(base[kind])
    for k, v in kw.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    put("config_parse", json.dumps(c))
variant("bert", hidden_size=1 << 20, num_attention_heads=1)
variant("bert", hidden_size=(1 << 20) + 1)
variant("bert", num_attention_heads=0)
variant("bert", num_attention_heads=5)
variant("bert", layer_norm_eps=0)
variant("bert", hidden_act="mish")
variant("bert", position_embedding_type="relative_key")
variant("bert", vocab_size=-1)
variant("bert", vocab_size=None)
variant("gpt2", eos_token_id=1 << 31)
variant("gpt2", n_inner=None, n_embd=1 << 20, n_head=1)
variant("gpt2", n_inner=0)
variant("gpt2", layer_norm_epsilon=1.5)
variant("vit", patch_size=7)
variant("vit", image_size=1 << 14, patch_size=1 << 13)
variant("vit", num_channels=1)
variant("vit", id2label={"0": "a", "2": "b"})
variant("yolov8", names=[])
variant("yolov8", names=["x"] * 10001)
put("config_parse", '{"model_type": "t5"}')
put("config_parse", '{"model_type": 3}')
put("config_parse", "[]")
put("config_parse", "[" * 200 + "]" * 200)
put("config_parse", '{"model_type":"bert","hidden_size":1e400}')

# Images: small PNG / BMP made here (standard library), plus JPEG / WebP / GIF and EXIF-rotated
# JPEGs when Pillow is available; a PNG declaring 50000x50000 pixels; non-images.
import zlib
def png(w, h, color=(200, 30, 60), declared=None):
    dw, dh = declared or (w, h)
    raw = b"".join(b"\0" + bytes(color) * w for _ in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", dw, dh, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
def bmp(w, h):
    row = (b"\x10\x80\xf0" * w).ljust((3 * w + 3) // 4 * 4, b"\0")
    pix = row * h
    return (b"BM" + struct.pack("<IHHI", 54 + len(pix), 0, 0, 54)
            + struct.pack("<IiiHHIIiiII", 40, w, h, 1, 24, 0, len(pix), 2835, 2835, 0, 0) + pix)
for w, h in [(1, 1), (3, 5), (17, 9), (1, 200), (64, 48)]:
    put("image_preprocess", png(w, h))
    put("image_preprocess", bmp(w, h))
put("image_preprocess", png(2, 2, declared=(50000, 50000)))
put("image_preprocess", b"not an image at all")
put("image_preprocess", b"\xff\xd8\xff\xe0" + b"\0" * 20)     # a JPEG that stops in its header
try:
    import io
    from PIL import Image
    im = Image.new("RGB", (40, 24), (10, 200, 90))
    for fmt, kw in [("JPEG", {"quality": 80}), ("WEBP", {}), ("GIF", {})]:
        b = io.BytesIO(); im.save(b, fmt, **kw); put("image_preprocess", b.getvalue())
    for orientation in range(1, 9):
        ex = Image.Exif(); ex[0x0112] = orientation
        b = io.BytesIO(); im.save(b, "JPEG", exif=ex.tobytes()); put("image_preprocess", b.getvalue())
except ImportError:
    print("(Pillow not installed: no JPEG / WebP / GIF image seeds)")

# Text model files: each fixture file behind its selector byte, and variants of each check.
tiny = os.path.join(fixtures, "bert", "tiny_a")
names = ["tokenizer.json", "config.json", "sentence_bert_config.json", "modules.json",
         "1_Pooling/config.json"]
for i, n in enumerate(names):
    put("text_model_files", bytes([i]) + open(os.path.join(tiny, n), "rb").read())
tok = json.load(open(os.path.join(tiny, "tokenizer.json")))
def tok_variant(**kw):
    t = dict(tok); t.update(kw); put("text_model_files", b"\0" + json.dumps(t).encode())
tok_variant(normalizer={"type": "Replace", "pattern": {"Regex": "[\\s\\S]"}, "content": ""})
tok_variant(normalizer=None, pre_tokenizer=None)
tok_variant(post_processor=None)
tok_variant(truncation={"max_length": 1, "strategy": "LongestFirst", "stride": 0, "direction": "Right"})
put("text_model_files", b"\2" + b'{"max_seq_length": 0}')
put("text_model_files", b"\2" + b'{"max_seq_length": 1}')
put("text_model_files", b"\3" + json.dumps([{"idx": 1, "name": "1", "path": "../x",
    "type": "sentence_transformers.models.Pooling"}]).encode())
put("text_model_files", b"\4" + b'{"pooling_mode_max_tokens": true}')
put("text_model_files", b"\4" + b'{}')

print({t: len(os.listdir(os.path.join("corpus", t))) for t in sorted(os.listdir("corpus"))})
PY
