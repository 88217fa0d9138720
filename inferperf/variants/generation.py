"""Text-generation variants (technique 6) made ready to run: caches, compile, half precision, torchao,
padded and continuous batching, speculative decoding (imports torch and transformers).

A runner (``GenerateRunner``, ``ContinuousRunner``) runs one round of a ``GenerationWorkload`` (its requests' prompts and output
lengths) and returns when each token of each request arrived. Output lengths are forced the same
way in every variant: greedy, ``max_new_tokens`` = the request's length and no end-of-sequence id
(``eos_token_id=-1``, which no token matches, for ``generate`` and continuous batching alike).
``min_new_tokens`` would instead suppress the EOS logit, changing which token wins wherever a
random model ranks EOS first, and continuous batching has no such processor: one rule everywhere
keeps every fp32 variant's tokens identical to eager's, EOS appearing, if at all, as an ordinary
token. (``eos_token_id=None`` would not do: ``generate`` fills unset fields from the model's own
generation config.)

Where a timestamp comes from: ``generate`` hands every new token to its streamer after moving it to
the CPU (which waits for the device), so the streamer's clock is the token's arrival on the host;
continuous batching records ``perf_counter`` per token itself. Both are the ``perf_counter`` clock.
"""

from __future__ import annotations

import copy
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from inferperf.hardware import sync
from inferperf.metrics.generation import RequestTiming, RoundTiming, kv_cache_bytes
from inferperf.models.store import directory_bytes
from inferperf.models.textgen import TextModel, load_text_model
from inferperf.text import error_line
from inferperf.variants.generation_variants import GenerationVariant
from inferperf.variants.prepared import RungUnavailable, Stopwatch, captured_warnings

#: tokens the prompt-lookup candidate generator proposes per step (transformers' documented example uses 10)
PROMPT_LOOKUP_TOKENS = 5
#: continuous batching's KV pages (tokens per page) on the CPU, where the default would size the
#: cache at 60% of free memory
CB_PAGE_TOKENS = 64

_WEIGHT_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class GenerationWorkload:
    """The requests of one round: each prompt's token ids and how many tokens it must generate."""

    prompts: tuple[tuple[int, ...], ...]
    output_lens: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.prompts) != len(self.output_lens) or not self.prompts:
            raise ValueError("a workload needs one output length per prompt, and at least one prompt")

    @property
    def output_tokens(self) -> int:
        return sum(self.output_lens)

    @property
    def longest(self) -> int:
        return max(len(p) for p in self.prompts) + max(self.output_lens)


@dataclass
class RoundResult:
    timing: RoundTiming
    #: the generated token ids of each request (exactly its output length)
    tokens: list[list[int]]


@dataclass
class AgreementRun:
    """An untimed run for agreement: tokens, the first generated position's logits, speculation counts."""

    tokens: list[list[int]]
    first_logits: list[torch.Tensor] | None
    speculation: dict[str, int] | None = None


class TokenClock:
    """A ``generate`` streamer that notes when each new token of each row reached the host.

    The first ``put`` is the prompt (ignored); each later one holds one token per row (shape
    ``(batch,)``) or, in speculative decoding, the accepted tokens of the single row (``(1, k)``).
    """

    def __init__(self, rows: int) -> None:
        self.times: list[list[float]] = [[] for _ in range(rows)]
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        now = time.perf_counter()
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        if value.dim() == 2:
            self.times[0].extend([now] * value.shape[-1])
        else:
            for row in range(value.shape[0]):
                self.times[row].append(now)

    def end(self) -> None:
        pass


def _generation_config(model: Any, new_tokens: int, cache: str, **overrides: Any) -> Any:
    config = copy.deepcopy(model.generation_config)
    config.do_sample = False
    config.max_new_tokens = new_tokens
    config.min_new_tokens = 0
    config.num_beams = 1
    config.eos_token_id = -1  # see the module docstring: EOS is an ordinary token while measuring
    for name in ("temperature", "top_p", "top_k"):
        setattr(config, name, None)
    config.cache_implementation = "static" if cache == "static" else None
    for name, value in overrides.items():
        setattr(config, name, value)
    return config


@dataclass
class GenerateRunner:
    """One ``generate`` over the round's requests: equal lengths, or left-padded to the longest prompt
    with every row generating the longest output (what a batch without a scheduler costs)."""

    model: Any
    device: str
    cache: str
    pad_token_id: int
    #: keyword arguments of ``generate`` for speculation (``assistant_model`` or ``prompt_lookup_num_tokens``)
    speculation: dict[str, Any] = field(default_factory=dict)
    #: GenerationConfig fields set on every call (``max_cache_len``, ``disable_compile``)
    config_overrides: dict[str, Any] = field(default_factory=dict)

    def _inputs(self, workload: GenerationWorkload) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(p) for p in workload.prompts)
        ids = torch.full((len(workload.prompts), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, prompt in enumerate(workload.prompts):
            ids[row, width - len(prompt) :] = torch.tensor(prompt)
            mask[row, width - len(prompt) :] = 1
        return ids.to(self.device), mask.to(self.device)

    def _generate(self, workload: GenerationWorkload, **extra: Any) -> tuple[Any, TokenClock, float]:
        ids, mask = self._inputs(workload)
        config = _generation_config(self.model, max(workload.output_lens), self.cache, **self.config_overrides)
        clock = TokenClock(len(workload.prompts))
        sync(self.device)  # type: ignore[arg-type]
        start = time.perf_counter()
        out = self.model.generate(
            input_ids=ids, attention_mask=mask, generation_config=config, streamer=clock, **self.speculation, **extra
        )
        return out, clock, start

    def run(self, workload: GenerationWorkload) -> RoundResult:
        out, clock, start = self._generate(workload)
        wall = time.perf_counter() - start
        sequences = out if isinstance(out, torch.Tensor) else out.sequences
        width = max(len(p) for p in workload.prompts)
        tokens, requests = [], []
        for row, (prompt, wanted) in enumerate(zip(workload.prompts, workload.output_lens)):
            tokens.append(sequences[row, width : width + wanted].tolist())
            requests.append(RequestTiming(start, tuple(clock.times[row][:wanted]), len(prompt)))
        return RoundResult(RoundTiming(tuple(requests), wall), tokens)

    def reference_run(self, workload: GenerationWorkload) -> AgreementRun:
        with counting_speculation(self.model) as counts:
            out, _, _ = self._generate(workload, return_dict_in_generate=True, output_logits=True)
        width = max(len(p) for p in workload.prompts)
        tokens = [out.sequences[row, width : width + n].tolist() for row, n in enumerate(workload.output_lens)]
        first = [out.logits[0][row].float().cpu() for row in range(len(workload.prompts))]
        return AgreementRun(tokens, first, counts if self.speculation else None)


@contextmanager
def counting_speculation(model: Any) -> Iterator[dict[str, int]]:
    """Count what speculative decoding's candidate generator proposed and the target accepted.

    transformers builds the candidate generator inside ``generate``; its ``get_candidates`` returns
    the proposal and ``update_candidate_strategy`` receives the number the target accepted. Both are
    wrapped on the generator this model builds, for the duration of the block (an untimed run).
    """
    counts = {"proposed_tokens": 0, "accepted_tokens": 0, "verify_steps": 0}
    original = model._get_candidate_generator

    def instrumented(*args: Any, **kwargs: Any) -> Any:
        generator = original(*args, **kwargs)
        propose, update = generator.get_candidates, generator.update_candidate_strategy

        def get_candidates(input_ids: torch.Tensor, *rest: Any, **named: Any) -> Any:
            candidates, logits = propose(input_ids, *rest, **named)
            counts["proposed_tokens"] += int(candidates.shape[-1] - input_ids.shape[-1])
            return candidates, logits

        def update_candidate_strategy(input_ids: torch.Tensor, scores: Any, num_matches: int) -> Any:
            counts["accepted_tokens"] += int(num_matches)
            counts["verify_steps"] += 1
            return update(input_ids, scores, num_matches)

        generator.get_candidates, generator.update_candidate_strategy = get_candidates, update_candidate_strategy
        return generator

    model._get_candidate_generator = instrumented
    try:
        yield counts
    finally:
        del model._get_candidate_generator  # the class's method again


@dataclass
class ContinuousRunner:
    """Continuous batching with paged attention: the manager ``generate_batch`` uses, started once
    (as a server would), each request added with its own output length; a round ends when all finish."""

    model: Any
    kv_pages: int
    page_tokens: int
    manager: Any = None

    def start(self) -> None:
        from transformers.generation.configuration_utils import ContinuousBatchingConfig

        config = _generation_config(self.model, 1, "dynamic")
        # sized explicitly: unset, the manager takes 60% of free memory for the KV cache on the CPU
        batching = ContinuousBatchingConfig(
            num_blocks=self.kv_pages, page_size=self.page_tokens, max_batch_tokens=self.kv_pages * self.page_tokens
        )
        self.manager = self.model.init_continuous_batching(generation_config=config, continuous_batching_config=batching)
        self.manager.start()

    def stop(self) -> None:
        if self.manager is not None:
            self.manager.stop(block=True, timeout=30)
            self.manager = None

    def run(self, workload: GenerationWorkload) -> RoundResult:
        if self.manager is None:
            self.start()
        start = time.perf_counter()
        ids = [
            self.manager.add_request(list(prompt), max_new_tokens=wanted, record_timestamps=True, eos_token_id=-1)
            for prompt, wanted in zip(workload.prompts, workload.output_lens)
        ]
        results: dict[str, Any] = {}
        deadline = start + 600
        while len(results) < len(ids):
            result = self.manager.get_result(timeout=1)
            if result is not None and result.is_finished():
                if result.error is not None:
                    raise RuntimeError(f"continuous batching failed request {result.request_id}: {result.error}")
                results[result.request_id] = result
            elif result is None and (not self.manager.is_running() or time.perf_counter() > deadline):
                raise RuntimeError("continuous batching stopped before every request finished")
        wall = time.perf_counter() - start
        tokens = [list(results[i].generated_tokens) for i in ids]
        requests = tuple(
            RequestTiming(start, tuple(results[i].timestamps or ()), len(prompt)) for i, prompt in zip(ids, workload.prompts)
        )
        return RoundResult(RoundTiming(requests, wall), tokens)

    def reference_run(self, workload: GenerationWorkload) -> AgreementRun:
        return AgreementRun(self.run(workload).tokens, None)


# --------------------------------------------------------------------------------------------
# Preparing a variant


@dataclass
class PreparedGenerator:
    runner: GenerateRunner | ContinuousRunner
    model: Any
    setup_s: float
    model_bytes: int | None
    #: bytes of the weights one decode step reads (the input embedding table counts only if tied)
    weight_bytes: int
    #: bytes of one token's keys and values across the layers, in the cache's dtype
    kv_bytes_per_token: int
    notes: dict[str, object] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def close(self) -> None:
        if isinstance(self.runner, ContinuousRunner):
            self.runner.stop()


def tensor_bytes(tensor: torch.Tensor) -> int:
    """Bytes a tensor holds, through tensor subclasses (torchao's quantized weights) to their data."""
    if type(tensor) not in (torch.Tensor, torch.nn.Parameter) and hasattr(tensor, "__tensor_flatten__"):
        inner_names, _ = tensor.__tensor_flatten__()
        return sum(tensor_bytes(getattr(tensor, name)) for name in inner_names)
    return tensor.numel() * tensor.element_size()


def decode_weight_bytes(model: Any) -> int:
    """What one decode step reads of the weights: every parameter once (tied ones once), except the
    input embedding table when the head has its own (a step reads one row of it per sequence)."""
    total = sum(tensor_bytes(p.data if isinstance(p, torch.nn.Parameter) else p) for p in model.parameters())
    embedding = model.get_input_embeddings().weight
    if not getattr(model.config, "tie_word_embeddings", False):
        total -= tensor_bytes(embedding.data)
    return total


def kv_bytes_per_token(model: Any, dtype: torch.dtype) -> int:
    config = model.config
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return kv_cache_bytes(
        layers=config.num_hidden_layers, kv_heads=config.num_key_value_heads, head_dim=head_dim, tokens=1, sequences=1,
        element_bytes=torch.empty((), dtype=dtype).element_size(),
    )


def torchao_config(quant: str, device: str) -> tuple[Any, str]:
    """torchao's configuration for ``quant`` on ``device`` (the one with a kernel there), and its name."""
    from inferperf.variants.quantize import require_torchao_kernels

    require_torchao_kernels(device)
    try:
        import torchao.quantization as ao
    except ImportError as exc:
        raise RungUnavailable(f"torchao is not available: {exc}") from None
    if quant == "int8wo":
        return ao.Int8WeightOnlyConfig(), "Int8WeightOnlyConfig"
    if quant == "int8dyn":
        return ao.Int8DynamicActivationInt8WeightConfig(), "Int8DynamicActivationInt8WeightConfig"
    if device == "cuda":
        if torch.cuda.get_device_capability() < (8, 0):
            raise RungUnavailable("torchao int4 weight-only needs a CUDA GPU of compute capability 8.0 or newer")
        return ao.Int4WeightOnlyConfig(group_size=128), "Int4WeightOnlyConfig(group_size=128)"
    # Int4WeightOnlyConfig's layouts need CUDA sm80+ (or XPU/NPU); the CPU's int4 packing kernels are
    # behind torchao's prototype config
    try:
        from torchao.prototype.quantization.int4 import PrototypeInt4WeightOnlyConfig
    except ImportError as exc:
        raise RungUnavailable(f"no int4 weight-only kernel for the CPU in this torchao ({exc})") from None
    return PrototypeInt4WeightOnlyConfig(group_size=32), "PrototypeInt4WeightOnlyConfig(group_size=32)"


def _load_variant_model(variant: GenerationVariant, directory: Path, device: str, workdir: Path) -> tuple[TextModel, int | None, dict[str, object]]:
    notes: dict[str, object] = {}
    if variant.quant is None:
        loaded = load_text_model(directory, device, dtype=_WEIGHT_DTYPES[variant.weights])
        return loaded, (directory_bytes(directory) if variant.weights == "fp32" else None), notes
    from transformers import TorchAoConfig

    config, name = torchao_config(variant.quant, device)
    notes["quant_config"] = name
    try:
        loaded = load_text_model(directory, device, dtype=torch.float32, device_map=device, quantization_config=TorchAoConfig(config))
        probe = torch.tensor([[1, 2, 3]], device=device)
        with torch.inference_mode():
            loaded.model(probe)
    except RungUnavailable:
        raise
    except Exception as exc:  # a config whose kernels this device lacks fails at load or first call
        raise RungUnavailable(f"torchao {name} does not run on {device} here: {error_line(exc)}") from None
    saved = workdir / "quantized"
    try:
        loaded.model.save_pretrained(saved)
        size: int | None = directory_bytes(saved)
    except Exception as exc:  # noqa: BLE001 - int4 prototype tensors are not in torchao's safetensors allow-list
        size = None
        notes["model_bytes_note"] = f"not saveable ({error_line(exc)}): model_bytes is null, weight bytes counted in memory"
    return loaded, size, notes


def prepare_generator(
    variant: GenerationVariant,
    directory: Path,
    draft_directory: Path | None,
    device: str,
    workload: GenerationWorkload,
    workdir: Path,
) -> PreparedGenerator:
    """``variant`` of the model saved in ``directory``, ready to run ``workload`` (set-up timed, never in a round)."""
    clock, warned = Stopwatch(), list[str]()
    with captured_warnings(warned):
        loaded, size, notes = _load_variant_model(variant, directory, device, workdir)
        model = loaded.model
        if size is None and variant.quant is None:
            size = _saved_bytes(model, workdir / "converted")
        compute_dtype = torch.float32 if variant.quant else _WEIGHT_DTYPES[variant.weights]
        overrides: dict[str, Any] = {}
        if variant.cache == "static":
            # one cache sized for the round's longest request, so later rounds never resize or recompile
            overrides["max_cache_len"] = workload.longest
        runner: GenerateRunner | ContinuousRunner
        if variant.batching == "continuous":
            pages = -(-sum(len(p) + n for p, n in zip(workload.prompts, workload.output_lens)) // CB_PAGE_TOKENS) + len(workload.prompts)
            runner = ContinuousRunner(model, kv_pages=pages, page_tokens=CB_PAGE_TOKENS)
            notes["kv_pages"] = pages
        else:
            speculation: dict[str, Any] = {}
            if variant.speculation == "assisted":
                if draft_directory is None:
                    raise RungUnavailable("no draft model for assisted decoding")
                speculation["assistant_model"] = load_text_model(draft_directory, device).model
                notes["draft_layers"] = speculation["assistant_model"].config.num_hidden_layers
            elif variant.speculation == "prompt_lookup":
                speculation["prompt_lookup_num_tokens"] = PROMPT_LOOKUP_TOKENS
            if variant.cache == "static" and not variant.compiled:
                overrides["disable_compile"] = True  # generate would compile a static cache by itself on CUDA
            runner = GenerateRunner(model, device, variant.cache, loaded.tokenizer.pad_token_id, speculation, overrides)
            if variant.compiled:
                notes.update(_compile_forward(model, runner, device, workload))
        if variant.cache == "static":
            notes["cache_implementation"] = "static"
    return PreparedGenerator(
        runner, model, clock.seconds(), size, decode_weight_bytes(model), kv_bytes_per_token(model, compute_dtype), notes, warned
    )


def _saved_bytes(model: Any, directory: Path) -> int | None:
    try:
        model.save_pretrained(directory)
    except Exception:  # noqa: BLE001 - the size is then unknown, never a failure of the variant
        return None
    return directory_bytes(directory)


def _compile_forward(model: Any, runner: GenerateRunner, device: str, workload: GenerationWorkload) -> dict[str, object]:
    """Static cache + ``torch.compile``, compiled here by one untimed run (prefill and decode graphs).

    On CUDA ``generate`` compiles the forward itself for a static cache, with its ``CompileConfig``
    (``mode="reduce-overhead"``: CUDA graphs). On other devices it does not, so the forward is
    compiled the way transformers' documentation shows for manual use:
    ``model.forward = torch.compile(model.forward)`` (Inductor, default mode, no CUDA graphs).
    """
    from inferperf.variants.compiled import counting_compiles

    notes: dict[str, object] = {}
    if device == "cuda":
        from transformers import CompileConfig

        runner.config_overrides["compile_config"] = CompileConfig(mode="reduce-overhead")
        notes["compile_mode"] = "generate's automatic compile, CompileConfig(mode='reduce-overhead'): CUDA graphs"
    else:
        model.forward = torch.compile(model.forward)
        notes["compile_mode"] = "model.forward = torch.compile(model.forward): Inductor, default mode"
    with counting_compiles(notes):
        try:
            with torch.inference_mode():
                runner.run(workload)
        except Exception as exc:  # inductor needs a working C++ compiler on CPU, Triton on CUDA
            raise RungUnavailable(f"torch.compile failed: {error_line(exc)}") from None
    return notes


def reference_tokens(model: Any, device: str, pad_token_id: int, workload: GenerationWorkload) -> AgreementRun:
    """Eager greedy decoding of each request alone (dynamic cache): what every variant must reproduce."""
    runner = GenerateRunner(model, device, "dynamic", pad_token_id)
    tokens: list[list[int]] = []
    logits: list[torch.Tensor] = []
    for prompt, wanted in zip(workload.prompts, workload.output_lens):
        single = runner.reference_run(GenerationWorkload((prompt,), (wanted,)))
        tokens += single.tokens
        logits += single.first_logits or []
    return AgreementRun(tokens, logits)


def generation_flops(model: Any, device: str, pad_token_id: int, workload: GenerationWorkload) -> int:
    """FLOPs of generating the workload's useful tokens, each request alone (eager, dynamic cache)."""
    from inferperf.measure import count_flops

    runner = GenerateRunner(model, device, "dynamic", pad_token_id)
    total = 0
    for prompt, wanted in zip(workload.prompts, workload.output_lens):
        single = GenerationWorkload((prompt,), (wanted,))
        total += count_flops(lambda: runner.run(single))
    return total


def agreement_record(reference: AgreementRun, candidate: AgreementRun) -> dict[str, object]:
    """``extra_info.agreement`` of a generation variant against eager greedy decoding."""
    from inferperf.metrics.generation import same_prefix_fraction

    prefixes = [same_prefix_fraction(r, c) for r, c in zip(reference.tokens, candidate.tokens)]
    record: dict[str, object] = {
        "same_prefix_fraction": min(prefixes),
        "tokens_equal": all(r == c for r, c in zip(reference.tokens, candidate.tokens)),
        "requests": len(prefixes),
        "cosine": None,
    }
    if reference.first_logits and candidate.first_logits:
        cosines = [
            float(torch.nn.functional.cosine_similarity(r.flatten(), c.flatten(), dim=0))
            for r, c in zip(reference.first_logits, candidate.first_logits)
        ]
        record["cosine"] = min(cosines)
    return record


def prompts_as_tuples(prompts: Sequence[Sequence[int]]) -> tuple[tuple[int, ...], ...]:
    return tuple(tuple(p) for p in prompts)
