"""Decoder LMs for text generation: a byte-level tokenizer built in code, random-init models, prompts.

Nothing is downloaded. The tokenizer is a byte-level BPE with no merges (each UTF-8 byte one
token, so a prompt of N tokens is exactly N tokens again after a round trip through text), a few
special tokens and a chat template, padded with reserved entries up to the model's vocabulary
size so that every id the model can emit decodes (a server streams text). It is saved beside the
model, so ``transformers serve DIR`` loads the same directory. With ``--weights DIR/<key>/`` the
user's checkpoint and its own tokenizer are used instead.

Prompts are cut from real English prose that ships with CPython: the documentation topics in
``pydoc_data.topics`` (the text ``help()`` shows; ~465,000 characters in 3.11), tokenized once
and cut into windows of exactly the asked number of tokens at seeded offsets.
"""

from __future__ import annotations

import copy
import random
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Sequence

from inferperf.models.store import quiet_transformers
from inferperf.models.text_specs import TextModelSpec

END_OF_TEXT = "<|endoftext|>"
SPECIAL_TOKENS = (END_OF_TEXT, "<|im_start|>", "<|im_end|>")
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
#: the seed every random-init text model is built with
BUILD_SEED = 0


def byte_level_tokenizer(vocab_size: int) -> Any:  # -> transformers.PreTrainedTokenizerFast
    """A byte-level BPE (256 byte symbols, no merges), special tokens, reserved ids up to ``vocab_size``."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    symbols = sorted(pre_tokenizers.ByteLevel.alphabet())
    vocab = {symbol: index for index, symbol in enumerate(symbols)}
    for special in SPECIAL_TOKENS:
        vocab[special] = len(vocab)
    if vocab_size < len(vocab):
        raise ValueError(f"vocab_size {vocab_size} is smaller than the {len(vocab)} byte and special tokens")
    # reserved ids are plain ASCII strings, so they decode as themselves through the byte-level decoder
    for index in range(len(vocab), vocab_size):
        vocab[f"<|reserved_{index}|>"] = index
    backend = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    backend.add_special_tokens([AddedToken(token, special=True) for token in SPECIAL_TOKENS])
    # reserved entries are also added tokens, so their text tokenizes back to their one id: a
    # served stream's text then counts the tokens the server generated (the client's tokenizer agrees)
    backend.add_tokens([AddedToken(f"<|reserved_{i}|>", special=False, normalized=False) for i in range(len(SPECIAL_TOKENS) + 256, vocab_size)])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token=END_OF_TEXT, pad_token=END_OF_TEXT, padding_side="left",
        model_max_length=1 << 20,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def unspeakable_ids(tokenizer: Any) -> list[int]:
    """Ids that do not decode to text on their own: bytes 0x80-0xFF and the special tokens."""
    from tokenizers import pre_tokenizers

    symbols = sorted(pre_tokenizers.ByteLevel.alphabet())
    byte_of = {symbol: byte for byte, symbol in _byte_symbols().items()}
    ids = [index for index, symbol in enumerate(symbols) if byte_of[symbol] >= 0x80]
    return ids + [tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS]


def _byte_symbols() -> dict[int, str]:
    """GPT-2's byte -> printable symbol table (what the ByteLevel pre-tokenizer writes for each byte)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    table, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + extra)
            extra += 1
    return table


def _config(spec: TextModelSpec, eos_token_id: int, layers: int | None = None) -> Any:
    from transformers import LlamaConfig, Qwen2Config

    config_class = {"llama": LlamaConfig, "qwen2": Qwen2Config}[spec.family]
    return config_class(
        vocab_size=spec.vocab_size,
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=layers or spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.kv_heads,
        max_position_embeddings=spec.max_position,
        tie_word_embeddings=spec.tie_embeddings,
        rope_parameters={"rope_type": "default", "rope_theta": spec.rope_theta},
        initializer_range=spec.initializer_range,
        eos_token_id=eos_token_id,
        pad_token_id=eos_token_id,
        bos_token_id=None,
    )


def save_random_text_model(spec: TextModelSpec, directory: Path) -> None:
    """Build ``spec`` with random weights (later layers scaled down: text_specs), save it with its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM

    quiet_transformers()
    tokenizer = byte_level_tokenizer(spec.vocab_size)
    torch.manual_seed(BUILD_SEED)
    model = AutoModelForCausalLM.from_config(_config(spec, tokenizer.eos_token_id)).eval()
    with torch.no_grad():
        for layer in model.model.layers[spec.draft_layers :]:
            layer.self_attn.o_proj.weight.mul_(spec.late_layer_scale)
            layer.mlp.down_proj.weight.mul_(spec.late_layer_scale)
        # a trained model's text decodes: greedy decoding of this one never picks a token that is
        # not text on its own (a lone UTF-8 continuation or lead byte, a special token), so a served
        # stream carries exactly one token per piece of text, as it would for real prose
        model.lm_head.weight[list(unspeakable_ids(tokenizer))] = 0.0
    model.generation_config.pad_token_id = tokenizer.eos_token_id
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def save_draft(target_dir: Path, draft_layers: int, directory: Path) -> None:
    """The draft for speculative decoding: the target's first ``draft_layers`` layers, its embeddings,
    final norm and head, saved as a model of its own (loaded back through ``from_pretrained``).

    Works on a user's checkpoint too (``--weights`` without a ``<key>_draft`` folder): the draft is
    then the early exit of their model, and its acceptance rate is what that model gives.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    quiet_transformers()
    target = AutoModelForCausalLM.from_pretrained(target_dir)
    config = copy.deepcopy(AutoConfig.from_pretrained(target_dir))
    config.num_hidden_layers = draft_layers
    if getattr(config, "layer_types", None):
        config.layer_types = config.layer_types[:draft_layers]
    draft = AutoModelForCausalLM.from_config(config)
    kept = {}
    for name, tensor in target.state_dict().items():
        parts = name.split(".")
        if "layers" in parts and int(parts[parts.index("layers") + 1]) >= draft_layers:
            continue
        kept[name] = tensor
    missing, unexpected = draft.load_state_dict(kept, strict=False)
    if unexpected or [m for m in missing if "lm_head" not in m]:
        raise ValueError(f"draft of {target_dir}: weights did not map ({missing[:3]}, {unexpected[:3]})")
    if config.tie_word_embeddings:
        draft.tie_weights()
    # a constructed draft's flat distribution would stop at the default confidence threshold (0.4)
    # after one token: propose a fixed number of tokens instead, each checked by the target
    draft.generation_config.num_assistant_tokens = 5
    draft.generation_config.num_assistant_tokens_schedule = "constant"
    draft.generation_config.assistant_confidence_threshold = 0.0
    with torch.no_grad():
        draft.save_pretrained(directory)
    AutoTokenizer.from_pretrained(target_dir).save_pretrained(directory)


@dataclass(frozen=True)
class TextModel:
    """A decoder LM loaded through ``from_pretrained(dir)``, with its tokenizer."""

    model: Any
    tokenizer: Any
    directory: Path
    load_s: float

    @property
    def params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())


def load_text_model(directory: Path, device: str, **from_pretrained: Any) -> TextModel:
    """``AutoModelForCausalLM.from_pretrained(directory, **from_pretrained)`` on ``device``, in eval mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quiet_transformers()
    started = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(directory, attn_implementation="sdpa", **from_pretrained)
    model = model.eval().to(device)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    return TextModel(model, tokenizer, directory, time.perf_counter() - started)


# --------------------------------------------------------------------------------------------
# Prompts of exact token lengths from real text


@cache
def prose() -> str:
    """CPython's documentation topics (``pydoc_data.topics``), in a fixed order."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[name] for name in sorted(topics))


#: ``prose()`` in each tokenizer's tokens, by the tokenizer's files (see ``prose_ids``)
_PROSE_IDS: dict[tuple[object, ...], tuple[int, ...]] = {}


def prose_ids(tokenizer: Any) -> list[int]:
    """``prose()`` in ``tokenizer``'s tokens: 466k tokens, 0.45 s to encode on Zen 3, which every
    generation case of a session asked for again. Kept per tokenizer loaded from a folder (named
    by its class, size and the folder's files with their sizes and times, so a folder rewritten
    with another tokenizer is encoded afresh); one built in memory is encoded each time."""
    source = Path(str(getattr(tokenizer, "name_or_path", "") or "."))
    key: tuple[object, ...] | None = None
    if str(source) != "." and source.is_dir():
        stats = ((f.name, f.stat()) for f in source.iterdir() if f.is_file())
        files = tuple(sorted((name, st.st_size, st.st_mtime_ns) for name, st in stats))
        key = (str(source.resolve()), type(tokenizer).__name__, len(tokenizer), files)
        if key in _PROSE_IDS:
            return list(_PROSE_IDS[key])
    ids = list(tokenizer(prose(), add_special_tokens=False)["input_ids"])
    if key is not None:
        _PROSE_IDS[key] = tuple(ids)
    return ids


def prompt_token_ids(tokenizer: Any, lengths: Sequence[int], seed: int = 0) -> list[list[int]]:
    """One prompt per entry of ``lengths``: exactly that many tokens of ``prose()``, at seeded offsets."""
    ids = prose_ids(tokenizer)
    rng = random.Random(seed)
    prompts = []
    for length in lengths:
        if length > len(ids):
            raise ValueError(f"a prompt of {length} tokens is longer than the prose ({len(ids)} tokens)")
        start = rng.randrange(0, len(ids) - length + 1)
        prompts.append(ids[start : start + length])
    return prompts


def mixed_lengths(prompt_len: int, output_len: int, requests: int, seed: int = 0) -> list[tuple[int, int]]:
    """(prompt, output) lengths of a mixed batch: prompts in [prompt_len/2, prompt_len], outputs in
    [output_len/4, output_len], the longest of each always present (so the case's axes are its maxima)."""
    rng = random.Random(seed)
    pairs = [(rng.randint(max(1, prompt_len // 2), prompt_len), rng.randint(max(2, output_len // 4), output_len)) for _ in range(requests)]
    pairs[0] = (prompt_len, pairs[0][1])
    pairs[-1] = (pairs[-1][0], output_len)
    return pairs
