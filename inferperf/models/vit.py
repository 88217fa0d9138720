"""DeiT from timm, with the seed's preprocessing (resize 256 bicubic, center crop 224, ImageNet norm).

Random weights are saved as ``model.safetensors`` with timm's ``config.json`` (the layout of a
timm checkpoint on a hub) and loaded back through timm's pretrained-weights path
(``create_model(..., pretrained=True, pretrained_cfg_overlay={"file": ...})``): the path a
real checkpoint given with ``--weights`` takes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

DEIT_ARCHITECTURES: dict[str, str] = {
    "deit_tiny": "deit_tiny_patch16_224",
    "deit_small": "deit_small_patch16_224",
    "deit_base": "deit_base_patch16_224",
}
WEIGHTS_FILE = "model.safetensors"


def save_random_timm(architecture: str, directory: Path, seed: int = 0) -> int:
    """Save ``architecture`` with random weights in timm's checkpoint layout; returns its parameter count."""
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    model = timm.create_model(architecture, pretrained=False).eval()
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(directory / WEIGHTS_FILE))
    config = {"architecture": architecture, "num_classes": model.num_classes, "pretrained_cfg": dict(model.pretrained_cfg)}  # type: ignore[arg-type]
    (directory / "config.json").write_text(json.dumps(config, indent=2, default=str), encoding="utf-8")
    return sum(p.numel() for p in model.parameters())


def load_timm(directory: Path, architecture: str | None = None) -> tuple[torch.nn.Module, float]:
    """The model in eval mode and the seconds its loading took."""
    import timm

    started = time.perf_counter()
    config = json.loads((directory / "config.json").read_text(encoding="utf-8")) if (directory / "config.json").exists() else {}
    name = architecture or config.get("architecture")
    if not name:
        raise ValueError(f"{directory}: config.json names no 'architecture' and none was given")
    weights = directory / WEIGHTS_FILE
    if not weights.exists():
        candidates = sorted(directory.glob("*.safetensors")) + sorted(directory.glob("*.bin")) + sorted(directory.glob("*.pth"))
        if not candidates:
            raise FileNotFoundError(f"{directory}: no {WEIGHTS_FILE} (or .bin/.pth) checkpoint")
        weights = candidates[0]
    model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": str(weights)}).eval()
    return model, time.perf_counter() - started


def deit_transform():  # -> torchvision transform: PIL image -> normalized (3, 224, 224)
    from torchvision.transforms import v2

    return v2.Compose(
        [
            v2.Resize(256, interpolation=v2.InterpolationMode.BICUBIC, antialias=True),
            v2.CenterCrop(224),
            v2.PILToTensor(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        ]
    )


def preprocessed_images(paths: list[Path]) -> torch.Tensor:
    from inferperf.data.loaders import decode

    transform = deit_transform()
    return torch.stack([transform(decode(p)) for p in paths])
