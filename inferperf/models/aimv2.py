"""AIMv2 image-text models from transformers, scoring detector crops against text queries.

``aimv2_l14`` is the configuration of the seed's "aimv2-large-patch14-224-lit" (ViT-L/14 image
tower, 24 layers, 1024 wide; 12-layer text tower; 768-d projection); ``aimv2_t14`` is a 4-layer
tower of the same shape for the quick tier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from inferperf.models.tokenizers import features, load_image_text, word_tokenizer

#: the seed's four text queries (docs/experiments.md#5)
QUERIES: tuple[str, ...] = ("cola can", "pepsi can", "sprite can", "fanta can")


@dataclass(frozen=True)
class Aimv2Spec:
    key: str
    vision: dict = field(default_factory=dict)
    text: dict = field(default_factory=dict)
    projection_dim: int = 768


AIMV2_SPECS: dict[str, Aimv2Spec] = {
    # transformers' Aimv2VisionConfig/Aimv2TextConfig defaults are the large patch14 224 lit model
    "aimv2_l14": Aimv2Spec("aimv2_l14"),
    "aimv2_t14": Aimv2Spec(
        "aimv2_t14",
        vision=dict(hidden_size=256, intermediate_size=704, num_hidden_layers=4, num_attention_heads=4),
        text=dict(hidden_size=256, intermediate_size=512, num_hidden_layers=2, num_attention_heads=4),
        projection_dim=256,
    ),
}


def save_random_aimv2(spec: Aimv2Spec, directory: Path, seed: int = 0) -> None:
    from transformers import Aimv2Config, Aimv2Model, CLIPImageProcessor

    tokenizer = word_tokenizer(QUERIES)
    text = dict(spec.text, vocab_size=max(64, len(tokenizer)), eos_token_id=tokenizer.eos_token_id)
    config = Aimv2Config(vision_config=dict(spec.vision), text_config=text, projection_dim=spec.projection_dim)
    torch.manual_seed(seed)
    Aimv2Model(config).eval().save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224}).save_pretrained(directory)


class CropScorer:
    """Text features of the queries once; per crop, image embedding and softmax over queries."""

    def __init__(self, directory: Path, device: str, queries: Sequence[str] = QUERIES) -> None:
        from transformers import Aimv2Model

        loaded = load_image_text(Aimv2Model, directory, device, queries)
        self.device = device
        self.model, self.processor, self.text_features = loaded.model, loaded.processor, loaded.text_features
        with torch.inference_mode():
            self.logit_scale = self.model.logit_scale.clamp(0.0, self.model.max_log_logit_scale).exp()
        self.queries = tuple(queries)
        self.load_s, self.params = loaded.load_s, loaded.params

    def pixel_values(self, crops: list) -> torch.Tensor:
        """Crops (PIL images) resized and normalized by the model's image processor."""
        return self.processor(images=crops, return_tensors="pt")["pixel_values"]

    def embed(self, model: torch.nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
        image = features(model.get_image_features(pixel_values=pixel_values))  # type: ignore[operator]
        return image / image.norm(dim=-1, keepdim=True)

    def scores(self, embeddings: torch.Tensor) -> torch.Tensor:
        """Softmax over the queries, (crops, queries)."""
        return (self.logit_scale * embeddings.float() @ self.text_features.T.float()).softmax(dim=-1)


def score_crops(scorer: CropScorer, embed, input_dtype: torch.dtype, crops: list, batched: bool, device: str):
    """Scores (crops, queries) and image embeddings: one forward per crop, or one for all crops."""
    groups = [crops] if batched else [[crop] for crop in crops]
    embeddings = torch.cat([embed(scorer.pixel_values(group).to(device, input_dtype)) for group in groups])
    return scorer.scores(embeddings), embeddings


def decision_agreement(
    reference: tuple[torch.Tensor, torch.Tensor], candidate: tuple[torch.Tensor, torch.Tensor], thresholds: Sequence[float]
) -> dict[str, object]:
    """How far a variant moves the filter: embedding cosine and decisions kept at each threshold."""
    (ref_scores, ref_embed), (scores, embed) = reference, candidate
    ref_scores, scores = ref_scores.float().cpu(), scores.float().cpu()
    cosine = torch.nn.functional.cosine_similarity(ref_embed.float().cpu(), embed.float().cpu(), dim=-1)
    return {
        "cosine": cosine.mean().item(),
        "decisions_same": {str(t): ((ref_scores > t) == (scores > t)).float().mean().item() for t in thresholds},
        "score_shift_mean_abs": (ref_scores - scores).abs().mean().item(),
        "score_shift_max_abs": (ref_scores - scores).abs().max().item(),
        # with random weights scores sit near uniform and few cross the seed's thresholds; whether
        # each crop's best query survives stays informative
        "top_query_same": (ref_scores.argmax(-1) == scores.argmax(-1)).float().mean().item(),
        "positives": {str(t): int((scores > t).sum()) for t in thresholds},
        "crops": len(scores),
    }

