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

print({t: len(os.listdir(os.path.join("corpus", t))) for t in sorted(os.listdir("corpus"))})
PY
