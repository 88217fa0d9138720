"""What a served model is: the manifest entry the host process loads and binds into Triton."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, Sequence

ServedKind = Literal["savedmodel", "timm", "sleep"]


@dataclass(frozen=True)
class ServedModel:
    """One model for the Triton host.

    ``savedmodel``: a TF SavedModel whose ``serving_default`` takes uint8 images and returns
    ``classes``; ``timm``: a timm checkpoint directory, run in torch with the same uint8-in,
    classes-out contract; ``sleep``: returns zeros after ``sleep_s`` (for testing timeouts).
    """

    name: str
    kind: ServedKind
    path: str = ""
    architecture: str = ""
    image_size: int = 224
    max_batch_size: int = 8
    dynamic_batching: bool = False
    #: dynamic batching: how long a request may wait for others to join its batch
    max_queue_delay_us: int = 2000
    sleep_s: float = 0.0


def write_manifest(models: Sequence[ServedModel], path: Path) -> Path:
    path.write_text(json.dumps([asdict(m) for m in models], indent=2), encoding="utf-8")
    return path


def read_manifest(path: Path) -> list[ServedModel]:
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
        return [ServedModel(**entry) for entry in entries]
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a served-model manifest ({exc})") from None
