"""A deterministic JPEG corpus made from the photographs bundled with scikit-image.

No downloads: every image is a crop of a real photograph shipped inside scikit-image, resized
to a COCO-like size (longer side 640, aspect ratios from 1:1 to 16:9, portrait and landscape)
and written as a baseline JPEG. Image ``i`` depends only on ``i`` and the corpus version, so
two machines benchmark the same bytes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

#: Bump when the recipe changes: the files then differ and old caches must not be reused.
CORPUS_VERSION = 1

#: scikit-image loaders that return photographs without downloading (checked on 0.22-0.26).
PHOTOGRAPHS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "stereo_motorcycle",
    "camera",
    "clock",
    "coins",
)

#: (width, height) targets: COCO's common sizes around 640x480.
SIZES = ((640, 480), (480, 640), (640, 427), (427, 640), (640, 360), (640, 640), (500, 375), (640, 512))

JPEG_QUALITY = 90


@cache
def _photograph(name: str) -> np.ndarray:
    import skimage.data

    image = getattr(skimage.data, name)()
    if isinstance(image, tuple):  # stereo_motorcycle returns (left, right, disparity)
        image = image[0]
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    return np.ascontiguousarray(image[..., :3].astype(np.uint8))


def render(index: int, size: tuple[int, int] | None = None) -> bytes:
    """JPEG bytes of corpus image ``index``; ``size`` (w, h) overrides the corpus's own choice."""
    from PIL import Image

    rng = np.random.default_rng([CORPUS_VERSION, index])
    photo = _photograph(PHOTOGRAPHS[index % len(PHOTOGRAPHS)])
    width, height = size or SIZES[int(rng.integers(len(SIZES)))]
    # crop the largest window of the target aspect ratio, scaled by 70-100%, at a random place
    h, w = photo.shape[:2]
    aspect = width / height
    crop_w = min(w, int(round(h * aspect)))
    crop_h = min(h, int(round(crop_w / aspect)))
    scale = float(rng.uniform(0.7, 1.0))
    crop_w, crop_h = max(16, int(crop_w * scale)), max(16, int(crop_h * scale))
    top = int(rng.integers(0, h - crop_h + 1))
    left = int(rng.integers(0, w - crop_w + 1))
    window = photo[top : top + crop_h, left : left + crop_w]
    if rng.random() < 0.5:
        window = window[:, ::-1]
    image = Image.fromarray(np.ascontiguousarray(window)).resize((width, height), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


@dataclass
class Corpus:
    """JPEG files under ``root``, written on first request and reused for the session."""

    root: Path

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, index: int) -> Path:
        path = self.root / f"v{CORPUS_VERSION}_{index:05d}.jpg"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(render(index))
            tmp.replace(path)  # atomic: a crash never leaves a truncated JPEG behind
        return path

    def paths(self, count: int) -> list[Path]:
        if count < 1:
            raise ValueError(f"a corpus request needs at least one image, got {count}")
        return [self.path(i) for i in range(count)]

    def sized(self, index: int, size: tuple[int, int]) -> Path:
        """Image ``index`` rendered at exactly ``size`` (w, h), e.g. the detector's 640x384."""
        path = self.root / f"v{CORPUS_VERSION}_{index:05d}_{size[0]}x{size[1]}.jpg"
        if not path.exists():
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(render(index, size))
            tmp.replace(path)
        return path
