"""Decoder LMs for text generation (technique 6): their shapes, importable without torch.

The case lists read this; ``inferperf.models.textgen`` builds a model from a spec with random
weights, saves it with ``save_pretrained`` beside a byte-level tokenizer, and everything then loads
it through ``from_pretrained(dir)`` — the local benchmarks and the served one alike.

Random weights are built so that the numbers mean something:
- ``initializer_range`` 0.1 instead of transformers' 0.02: at 0.02 a random decoder repeats one
  token (or a 3-token cycle) whatever the prompt, so greedy agreement is trivially 100% and
  prompt lookup "accepts" everything; at 0.1 the output depends on the context (31 of 32 tokens
  distinct in a check) while the top-1/top-2 logit gap (median 0.27, min ~1e-3) stays far above
  fp32 rounding, so fp32 variants must agree token for token.
- the layers from ``draft_layers`` on write their outputs scaled by ``late_layer_scale``: they
  still cost their matmuls, but contribute little to the residual stream, so the target's first
  ``draft_layers`` layers (saved as the draft) agree with it often, by construction. The scale sets
  the acceptance rate (checked on the quick model: 0.05 accepts ~100%, 0.2 ~22%); with
  ``--weights`` the rate is the real one of the user's target and draft.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Family = Literal["llama", "qwen2"]


@dataclass(frozen=True)
class TextModelSpec:
    key: str
    family: Family
    vocab_size: int
    hidden_size: int
    intermediate_size: int
    layers: int
    heads: int
    kv_heads: int
    max_position: int
    tie_embeddings: bool
    #: what the shape copies (docs/techniques/generation.md)
    shape_of: str
    #: layers of the draft model (the target's first layers)
    draft_layers: int
    #: scale of the later layers' output projections (see the module docstring)
    late_layer_scale: float = 0.1
    initializer_range: float = 0.1
    rope_theta: float = 10000.0

    @property
    def draft_key(self) -> str:
        return f"{self.key}_draft"

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.heads


TEXT_MODELS: dict[str, TextModelSpec] = {
    s.key: s
    for s in (
        # a few layers with grouped-query attention: the technique's quick tier in ~2 min on 2 cores
        TextModelSpec(
            "llama_tiny", "llama", vocab_size=512, hidden_size=256, intermediate_size=768, layers=4, heads=8,
            kv_heads=2, max_position=4096, tie_embeddings=False, shape_of="a 4-layer Llama with GQA (8 heads, 2 KV heads)",
            draft_layers=2,
        ),
        # the shape of Qwen2.5-0.5B (its config.json), with its real vocabulary size
        TextModelSpec(
            "qwen2_0p5b", "qwen2", vocab_size=151936, hidden_size=896, intermediate_size=4864, layers=24, heads=14,
            kv_heads=2, max_position=32768, tie_embeddings=True, shape_of="Qwen2.5-0.5B (24 layers, 14 heads, 2 KV heads, vocab 151,936)",
            draft_layers=6, rope_theta=1000000.0,
        ),
    )
}
