"""CLIP-style image-text models from transformers, for zero-shot classification.

``clip_b16`` has the image tower of the seed's model (ViT-B/16, 224 px); ``clip_t16`` is a
four-layer tower of the same shape for the quick tier. Random weights are saved with a small
word-level tokenizer that covers the labels, and a standard CLIP image processor.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from inferperf.data.loaders import ImageProcessorTransform

if TYPE_CHECKING:
    import torch
from inferperf.models.tokenizers import features, load_image_text, word_tokenizer

#: the seed's three zero-shot labels (docs/experiments.md#1)
LABELS: tuple[str, ...] = ("bench press", "squat", "deadlift")


@dataclass(frozen=True)
class ClipSpec:
    key: str
    vision_hidden: int
    vision_layers: int
    vision_heads: int
    text_hidden: int
    text_layers: int
    text_heads: int
    projection_dim: int
    patch_size: int = 16
    image_size: int = 224


CLIP_SPECS: dict[str, ClipSpec] = {
    # openai/clip-vit-base-patch16 shapes
    "clip_b16": ClipSpec("clip_b16", 768, 12, 12, 512, 12, 8, 512),
    "clip_t16": ClipSpec("clip_t16", 256, 4, 4, 256, 2, 4, 256),
}

def save_random_clip(spec: ClipSpec, directory: Path, seed: int = 0) -> None:
    """Build ``spec`` with random weights and save model, tokenizer and image processor."""
    import torch
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    tokenizer = word_tokenizer(LABELS)
    config = CLIPConfig(
        text_config=dict(
            hidden_size=spec.text_hidden,
            intermediate_size=4 * spec.text_hidden,
            num_hidden_layers=spec.text_layers,
            num_attention_heads=spec.text_heads,
            vocab_size=max(64, len(tokenizer)),
            max_position_embeddings=77,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        ),
        vision_config=dict(
            hidden_size=spec.vision_hidden,
            intermediate_size=4 * spec.vision_hidden,
            num_hidden_layers=spec.vision_layers,
            num_attention_heads=spec.vision_heads,
            patch_size=spec.patch_size,
            image_size=spec.image_size,
        ),
        projection_dim=spec.projection_dim,
    )
    torch.manual_seed(seed)
    CLIPModel(config).eval().save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    size = spec.image_size
    CLIPImageProcessor(size={"shortest_edge": size}, crop_size={"height": size, "width": size}).save_pretrained(
        directory
    )


class ZeroShotClassifier:
    """Text features once; then ``softmax(img @ text.T)`` per batch of preprocessed images."""

    def __init__(self, directory: Path, device: str, labels: Sequence[str] = LABELS) -> None:
        import torch
        from transformers import CLIPModel

        loaded = load_image_text(CLIPModel, directory, device, labels)
        self.device = device
        self.model, self.processor, self.text_features = loaded.model, loaded.processor, loaded.text_features
        self.transform = ImageProcessorTransform(self.processor)
        with torch.inference_mode():
            self.logit_scale = self.model.logit_scale.exp()
        self.labels = tuple(labels)
        self.load_s, self.params = loaded.load_s, loaded.params
        self.image_size = int(self.model.config.vision_config.image_size)

    def classify(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Label probabilities, shape (batch, labels)."""
        image = features(self.model.get_image_features(pixel_values=pixel_values.to(self.device, non_blocking=True)))
        image = image / image.norm(dim=-1, keepdim=True)
        return (self.logit_scale * image @ self.text_features.T).softmax(dim=-1)

    def flops_per_image(self) -> int:
        import torch

        from inferperf.measure import count_flops

        size = self.image_size
        probe = torch.zeros(1, 3, size, size, device=self.device)
        return count_flops(lambda: self.classify(probe))
