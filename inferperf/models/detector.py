"""The detection stage: a torchvision detector with random weights, timed on 384x640 images.

Random weights make its boxes meaningless, so the crops the image-text model scores come from
fixed boxes (``fixed_boxes``): deterministic work, the same on every machine.
"""

from __future__ import annotations

import torch

DETECTORS = {"fasterrcnn_mbv3": "fasterrcnn_mobilenet_v3_large_fpn"}


def build_detector(key: str, device: str) -> torch.nn.Module:
    import torchvision

    builder = getattr(torchvision.models.detection, DETECTORS[key])
    torch.manual_seed(0)
    return builder(weights=None, weights_backbone=None, num_classes=91).eval().to(device)


def fixed_boxes(count: int, width: int = 640, height: int = 384) -> list[tuple[int, int, int, int]]:
    """``count`` can-shaped boxes (x0, y0, x1, y1) spread over the image, tall and narrow like cans."""
    boxes = []
    for i in range(count):
        column, row = i % 4, (i // 4) % 2
        box_w, box_h = 90 + 10 * (i % 3), 150 + 20 * (i % 2)
        x0 = 20 + column * (width - 40) // 4
        y0 = 20 + row * (height - box_h - 40)
        boxes.append((x0, y0, min(width, x0 + box_w), min(height, y0 + box_h)))
    return boxes
