"""A small word-level tokenizer for image-text models built with random weights.

Real checkpoints ship their own tokenizer; random-init models get one whose vocabulary covers
their text queries, saved with ``save_pretrained`` and loaded back with ``AutoTokenizer``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    import torch

from typing import Iterable

SPECIAL_TOKENS = ("<pad>", "<unk>", "<bos>", "<eos>")


def word_tokenizer(texts: Iterable[str]):  # -> transformers.PreTrainedTokenizerFast
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    for word in sorted({w for text in texts for w in text.split()} | {"a", "photo", "of"}):
        vocab.setdefault(word, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>", special_tokens=[("<bos>", vocab["<bos>"]), ("<eos>", vocab["<eos>"])]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>", unk_token="<unk>",
        model_max_length=77,
    )


def features(output) -> torch.Tensor:
    """Embeddings from ``get_image_features``/``get_text_features``: a tensor in transformers 4,
    an output whose ``pooler_output`` holds them in transformers 5."""
    return output if hasattr(output, "norm") else output.pooler_output


def text_features(model, directory, texts, device: str) -> torch.Tensor:
    """Normalized text embeddings of ``texts`` with the tokenizer saved in ``directory`` (computed once)."""
    import torch
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory)
    with torch.inference_mode():
        tokens = tokenizer(list(texts), padding=True, return_tensors="pt").to(device)
        embedded = features(model.get_text_features(**tokens))
    return embedded / embedded.norm(dim=-1, keepdim=True)



@dataclass
class ImageTextModel:
    """An image-text model loaded through ``from_pretrained(dir)``, with its image processor and the texts' features."""

    model: Any
    processor: Any
    text_features: torch.Tensor
    load_s: float
    params: int


def load_image_text(model_class: Any, directory: Path, device: str, texts: Sequence[str]) -> ImageTextModel:
    """What CLIP and AIMv2 share: the model on ``device``, its processor, normalized text features, load time."""
    import time

    from transformers import AutoImageProcessor

    started = time.perf_counter()
    model = model_class.from_pretrained(directory).eval().to(device)
    processor = AutoImageProcessor.from_pretrained(directory)
    texts_embedded = text_features(model, directory, texts, device)
    return ImageTextModel(model, processor, texts_embedded, time.perf_counter() - started, sum(p.numel() for p in model.parameters()))
