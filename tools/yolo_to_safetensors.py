"""Converts an ultralytics YOLOv8 or YOLO11 checkpoint (.pt) into the folder wgpu-infer loads:
model.safetensors (the model's own state_dict key names, BatchNorm running stats included,
num_batches_tracked dropped) and config.json {"model_type": "yolov8" | "yolo11", "names": [...]}
(yolo11 when the network has C3k2 blocks).

Run where ultralytics is installed:
    python tools/yolo_to_safetensors.py yolov8n.pt out/yolov8n [--f16]
    python tools/yolo_to_safetensors.py yolo11n.pt out/yolo11n [--f16]
"""
import argparse
import json
import os


def export(model, out_dir, f16=False):
    """`model` is an ultralytics DetectionModel (YOLO(...).model)."""
    import torch
    from safetensors.torch import save_file

    sd = {}
    for k, v in model.state_dict().items():
        if k.endswith("num_batches_tracked"):
            continue
        v = v.detach().clone().contiguous().float()
        sd[k] = v.half() if f16 else v
    names = model.names
    names = [names[i] for i in range(len(names))] if isinstance(names, dict) else list(names)
    os.makedirs(out_dir, exist_ok=True)
    save_file(sd, os.path.join(out_dir, "model.safetensors"))
    kinds = {type(m).__name__ for m in model.modules()}
    model_type = "yolo11" if "C3k2" in kinds else "yolov8"
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump({"model_type": model_type, "names": names}, f, indent=2, ensure_ascii=False)
    return sd


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("out_dir")
    p.add_argument("--f16", action="store_true", help="store weights as float16")
    a = p.parse_args()
    from ultralytics import YOLO

    model = YOLO(a.checkpoint).model.float().eval()
    sd = export(model, a.out_dir, a.f16)
    print(f"{len(sd)} tensors -> {a.out_dir}")


if __name__ == "__main__":
    main()
