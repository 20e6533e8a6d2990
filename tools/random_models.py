"""Writes real-size model folders with random weights (benchmarks only; never parity oracles):

  gpt2-small-random  GPT-2 small (12 layers, 768 wide, 50257 tokens; tokenizer of the tiny fixture)
  vit-base-random    ViT-B/16 at 224 px, 1000 classes, with a ViTImageProcessor config

  python tools/random_models.py MODELS_DIR [NAME ...]    (default: both)

Needs torch + transformers. Idempotent: a folder that has model.safetensors is kept. Each is
written to NAME.partial and renamed, so nothing half-written is left.
"""
import os
import shutil
import sys

import torch


def gpt2(dest):
    from transformers import GPT2Config, GPT2LMHeadModel

    m = GPT2LMHeadModel(GPT2Config())
    m.save_pretrained(dest, safe_serialization=True)
    shutil.copy("tests/fixtures/gpt2/tiny_a/tokenizer.json", os.path.join(dest, "tokenizer.json"))


def vit(dest):
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor

    cfg = ViTConfig(num_labels=1000, id2label={i: f"class {i}" for i in range(1000)})
    ViTForImageClassification(cfg).save_pretrained(dest, safe_serialization=True)
    ViTImageProcessor(size={"height": 224, "width": 224}).save_pretrained(dest)


MAKERS = {"gpt2-small-random": gpt2, "vit-base-random": vit}

if __name__ == "__main__":
    models = sys.argv[1]
    for name in sys.argv[2:] or list(MAKERS):
        dest = os.path.join(models, name)
        if os.path.isfile(os.path.join(dest, "model.safetensors")):
            continue
        torch.manual_seed(0)
        part = dest + ".partial"
        shutil.rmtree(part, ignore_errors=True)
        MAKERS[name](part)
        shutil.rmtree(dest, ignore_errors=True)
        os.rename(part, dest)
        print(f"{name} -> {dest}")
