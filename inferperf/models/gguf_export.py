"""A GGUF of technique 6's saved model, for llama.cpp's server (the ``[llamacpp]`` extra).

The ``gguf`` package has no Hugging Face converter, so the file is written here with
``gguf.GGUFWriter``: the llama architecture's keys, the byte-level tokenizer as llama.cpp's
``gpt2`` BPE (its tokens in the byte-to-symbol form, one inert merge, special and reserved entries
typed), and every tensor in float32 under llama.cpp's names. Query and key projections are
permuted as llama.cpp's own converter does (its rotary embedding pairs adjacent dimensions;
Hugging Face's pairs the two halves). The same random weights then run in another engine.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

#: GGUF token types (llama.cpp's llama_token_type)
NORMAL, CONTROL, USER_DEFINED = 1, 3, 4


class GgufUnsupported(ValueError):
    """The saved model is not one this writer knows (the message says which)."""


def _permute(weight: np.ndarray, heads: int) -> np.ndarray:
    """HF's rotary layout (halves) -> llama.cpp's (interleaved pairs), per head."""
    rows = weight.shape[0]
    return weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def write_gguf(model_dir: Path, path: Path) -> Path:
    """Write ``model_dir`` (a llama-family ``save_pretrained`` directory) as a float32 GGUF at ``path``."""
    import gguf
    from safetensors.numpy import load_file

    config = json.loads((model_dir / "config.json").read_text())
    if config.get("model_type") != "llama":
        raise GgufUnsupported(f"the GGUF writer knows the llama family only, not {config.get('model_type')!r} ({model_dir})")
    tokenizer = json.loads((model_dir / "tokenizer.json").read_text())
    vocab: dict[str, int] = tokenizer["model"]["vocab"]
    added = {t["content"]: t for t in tokenizer.get("added_tokens", [])}
    size = int(config["vocab_size"])
    tokens, types = [""] * size, [NORMAL] * size
    for text, index in vocab.items():
        tokens[index] = text
        if text in added:
            types[index] = CONTROL if added[text].get("special") else USER_DEFINED
    heads, kv_heads = int(config["num_attention_heads"]), int(config["num_key_value_heads"])
    hidden = int(config["hidden_size"])
    head_dim = int(config.get("head_dim") or hidden // heads)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(model_dir.name)
    writer.add_context_length(int(config["max_position_embeddings"]))
    writer.add_embedding_length(hidden)
    writer.add_block_count(int(config["num_hidden_layers"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(float((config.get("rope_parameters") or {}).get("rope_theta", config.get("rope_theta", 10000.0))))
    writer.add_layer_norm_rms_eps(float(config["rms_norm_eps"]))
    writer.add_vocab_size(size)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    # llama.cpp refuses a BPE without merges; one merge of two NUL bytes (which never meet in text)
    # keeps the tokenizer what it is: each byte its own token
    nul = "\u0100"  # the ByteLevel symbol of byte 0x00
    writer.add_token_merges([f"{nul} {nul}"])
    writer.add_eos_token_id(int(config["eos_token_id"]))
    writer.add_pad_token_id(int(config.get("pad_token_id") or config["eos_token_id"]))
    writer.add_add_bos_token(False)
    weights = load_file(str(model_dir / "model.safetensors"))
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight", "lm_head.weight": "output.weight"}
    per_layer = {
        "input_layernorm": "attn_norm", "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output", "post_attention_layernorm": "ffn_norm", "mlp.gate_proj": "ffn_gate",
        "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
    }
    if "lm_head.weight" not in weights:  # tied embeddings
        weights["lm_head.weight"] = weights["model.embed_tokens.weight"]
    for name, tensor in weights.items():
        array = np.ascontiguousarray(tensor.astype(np.float32))
        if name in names:
            writer.add_tensor(names[name], array)
            continue
        _, _, layer, rest = name.split(".", 3)
        part = rest.removesuffix(".weight")
        if part not in per_layer:
            raise GgufUnsupported(f"{model_dir}: no GGUF name for tensor {name!r}")
        if part == "self_attn.q_proj":
            array = _permute(array, heads)
        elif part == "self_attn.k_proj":
            array = _permute(array, kv_heads)
        writer.add_tensor(f"blk.{layer}.{per_layer[part]}.weight", array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
