"""The record's keys: one typed registry, in the manner of pyperf's ``_metadata.py``.

Every key inferperf adds to pytest-benchmark's JSON is declared here once, with its type, its
unit and its meaning. The writer (``inferperf.measure``, ``inferperf.session``) fills keys by these
names, the loader checks the type of every key it meets, ``inferperf validate`` checks that every
required key is present, and the key tables of the documentation (``docs/record.md``) are
rendered from this registry (``python -m inferperf.record.keys docs/record.md`` rewrites them;
``tests/test_readme.py`` fails when they differ). Units are in the names: ``_s`` seconds, ``_bytes`` bytes, ``_per_s`` per second,
``_fraction`` a ratio in 0..1, ``_j`` joules, ``_w`` watts, ``_usd`` US dollars.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

#: Version of the keys inferperf adds to pytest-benchmark's JSON (``machine_info["inferperf"]``
#: and each benchmark's ``extra_info``). Bump when a key changes meaning or unit.
SCHEMA_VERSION = 1

Kind = Literal["str", "int", "number", "bool", "list", "object"]
Constraint = Literal["", "positive", "nonnegative", "fraction"]

_KIND_NAMES = {"str": "a string", "int": "an integer", "number": "a number", "bool": "true or false", "list": "a list", "object": "an object"}


class RecordError(ValueError):
    """A saved run that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Key:
    """One documented key: its JSON type(s), unit and meaning."""

    name: str
    kinds: tuple[Kind, ...]
    unit: str
    meaning: str
    #: every inferperf record carries it (``inferperf validate`` fails without it)
    required: bool = False
    nullable: bool = True
    constraint: Constraint = ""
    plain_types: frozenset[type] = field(default=frozenset(), init=False, repr=False, compare=False)
    number_types: frozenset[type] = field(default=frozenset(), init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # the types whose every value is valid for this key: checked with one set lookup
        plain: set[type] = {kind_type for kind, kind_type in (("str", str), ("list", list), ("object", dict), ("bool", bool)) if kind in self.kinds}
        if self.constraint == "" and ("int" in self.kinds or "number" in self.kinds):
            plain.add(int)
        if self.nullable:
            plain.add(type(None))
        object.__setattr__(self, "plain_types", frozenset(plain))
        numbers: set[type] = {float, int} if "number" in self.kinds else {int} if "int" in self.kinds else set()
        object.__setattr__(self, "number_types", frozenset(numbers))

    def fine_number(self, value: float) -> bool:
        """A float or int of this key's number kinds that is finite and meets the constraint (the fast path)."""
        try:
            return math.isfinite(value) and self._meets_constraint(value)
        except OverflowError:  # an integer too large for a float: ``problem`` says so
            return False

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not a valid value of this key, or None."""
        if value is None:
            return None if self.nullable else "is null"
        # the common case first (a fleet's comparison checks millions of values): a string, list or
        # object of an allowed kind has nothing more to check
        kind_of = type(value)
        if kind_of in _CONTAINER_TYPES and _CONTAINER_TYPES[kind_of] in self.kinds:
            return None
        if kind_of is float and "number" in self.kinds and math.isfinite(value) and self._meets_constraint(value):
            return None
        if not any(_is_kind(value, kind) for kind in self.kinds):
            expected = " or ".join(_KIND_NAMES[k] for k in self.kinds)
            return f"is {_describe(value)}, expected {expected}"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value) if not isinstance(value, int) or abs(value) < 1 << 1000 else math.inf
            if not math.isfinite(number):
                return f"is {_describe(value)}, expected a finite number"
            if self.constraint == "positive" and number <= 0:
                return f"is {value!r}, expected a positive number"
            if self.constraint == "nonnegative" and number < 0:
                return f"is {value!r}, expected a number >= 0"
            if self.constraint == "fraction" and not 0 <= number <= 1:
                return f"is {value!r}, expected a fraction in [0, 1]"
        return None

    def _meets_constraint(self, number: float) -> bool:
        if self.constraint == "positive":
            return number > 0
        if self.constraint == "nonnegative":
            return number >= 0
        if self.constraint == "fraction":
            return 0 <= number <= 1
        return True

    @property
    def type_name(self) -> str:
        return " or ".join(self.kinds) + (" or null" if self.nullable else "")


_CONTAINER_TYPES: dict[type, Kind] = {str: "str", list: "list", dict: "object"}


def _is_kind(value: Any, kind: Kind) -> bool:
    if kind == "str":
        return isinstance(value, str)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "list":
        return isinstance(value, list)
    return isinstance(value, dict)


def _describe(value: Any) -> str:
    """A short description of a bad value for a one-line message (never the whole value)."""
    if isinstance(value, (dict, list)):
        return f"{'an object' if isinstance(value, dict) else 'a list'} of {len(value)}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**20:
        return f"an integer of {len(str(abs(value))) if abs(value) < 10**4000 else 'thousands of'} digits"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _key(name: str, kinds: str, unit: str, meaning: str, **flags: Any) -> Key:
    return Key(name, tuple(kinds.split("|")), unit, meaning, **flags)  # type: ignore[arg-type]


R = {"required": True}
#: machine keys every record carries, never null
M = {"required": True, "nullable": False}

#: ``machine_info["inferperf"]``
MACHINE: tuple[Key, ...] = (
    _key("schema", "int", "—", "version of the keys in this table and the next", **M, constraint="positive"),
    _key("tier", "str", "—", "`quick` or `standard`", **M),
    _key("threads_option", "int", "threads", "`--threads` as given (null: library default)"),
    _key("env_threads", "object", "—", "`OMP_NUM_THREADS` / `MKL_NUM_THREADS` as set for the run"),
    _key("weights_dir", "str", "—", "`--weights` as given"),
    _key(
        "versions", "object", "—",
        "versions of torch, torchvision, transformers, timm, torchao, onnxruntime, executorch, tensorflow, keras, "
        "dali, pytriton, tritonclient, numpy, pillow, scikit-image, pytest-benchmark — those installed", **M,
    ),
    _key(
        "torch_build", "object", "—",
        "CUDA version torch was built with, cuDNN version (with a GPU), intra-op and inter-op threads, oneDNN "
        "availability, quantized engines", **M,
    ),
    _key(
        "cpu", "object", "—",
        "model name, logical cores, cores in this process's affinity, ISA flags that matter (`avx2`, `fma`, "
        "`avx512f`, `avx512_vnni`, `avx_vnni`, `avx512_bf16`, `avx512_fp16`, `amx_*`; on Arm `asimd`, "
        "`asimdhp`/`fphp` (native fp16), `sve`, `bf16`, `i8mm`, …), read from py-cpuinfo", **M,
    ),
    _key("gpus", "list", "—", "per CUDA device: name, memory (bytes), compute capability, multiprocessors, driver", **M),
    _key(
        "calibration", "object", "—",
        "per device, measured once per session (~1–3 s): `peak_flops_per_s` per dtype (`fp32`, `bf16`, `fp16` where "
        "the hardware has it natively, `int8` via `torch._int_mm`, on CUDA the faster of a row- and a column-major "
        "right-hand side; best of 5 square matmuls, n=1024 on CPU, 8192 on CUDA), `mem_bandwidth_bytes_per_s` (a "
        "large copy; bytes read + written), `seconds`, `notes` (a dtype not calibrated and why; on a GPU whose int8 "
        "rate falls below its bf16 rate, that no int8 tensor-core kernel ran)", **M,
    ),
    _key(
        "skipped", "list", "—",
        "every case that did not run: `case_id` and the `reason` (missing extra, absent device, out of memory at a "
        "batch size)", **M,
    ),
    _key(
        "failed", "list", "—",
        "every case that failed: `case_id` and the `reason` (the assertion or error, or with `--isolate` the "
        "signal, exit code or timeout of its child process and the last lines it printed)",
    ),
    _key(
        "torchao", "object", "—",
        "the torch/torchao pairing: both versions, how many compiled extensions torchao ships and how many "
        "`torchao::` operators registered, `extensions_loaded`, and the `reason` when they did not load (then its "
        "CUDA rungs skip: they would run on slow fallbacks); null without torchao",
    ),
    _key(
        "energy", "object", "—",
        "per device, where `energy_per_item_j` comes from: `source` (`nvml`: the GPU's total-energy counter; `rapl`: "
        "the CPU packages' counters under `/sys/class/powercap`) or null with the `reason` (no counter readable)", **M,
    ),
    _key("price_per_hour_usd", "number", "USD/h", "`--price-per-hour` as given (null: no cost computed)", constraint="nonnegative"),
    _key(
        "load_generator", "object", "—",
        "what this machine's served-load client can drive within the fidelity bound, from `inferperf client-ceiling` "
        "(null: never measured here): `tokens_per_s` (streamed tokens/s at the highest good step), `streams`, `workers`, "
        "`per_core_tokens_per_s` (tokens per second of one client core), `stamp_source`, `measured`, `node`",
    ),
    _key(
        "isolated", "bool", "—",
        "`true` when the session ran each case in a fresh child process (`--isolate`)", **M,
    ),
)

#: per benchmark ``extra_info``
EXTRA_INFO: tuple[Key, ...] = (
    _key("technique", "str", "—", "the technique (`batching`, `null`, …)", **R),
    _key("model", "str", "—", "model key (`clip_t16`, `clip_b16`, …)", **R),
    _key("variant", "str", "—", "the technique's variant (`single`, `manual`, `loader_w2`, …)", **R),
    _key("device", "str", "—", "`cpu` or `cuda`", **R),
    _key("dtype", "str", "—", "compute dtype of the variant (`fp32`, `bf16`, `int8dyn`, …)", **R),
    _key("batch", "int", "items", "batch size", **R, constraint="positive"),
    _key("backend", "str", "—", "`torch`, `tf`, `dali`, `triton`, …", **R),
    _key("case_id", "str", "—", "`technique/model-device-dtype-variant-bsN`: the stable id comparisons match on", **R, nullable=False),
    _key("tier", "str", "—", "`quick` or `standard`", **R),
    _key("threads", "int", "threads", "torch intra-op threads during the run", **R, constraint="positive"),
    _key(
        "rounds", "int", "rounds",
        "timed rounds that ran (fewer than configured when the quick tier's time cap trimmed a slow case)", **R,
        constraint="positive",
    ),
    _key("warmup_rounds", "int", "rounds", "untimed rounds before timing (the last one probes peak memory)", **R, constraint="nonnegative"),
    _key("items_per_round", "int", "items", "items (images, crops, requests) one timed round processes", **R, constraint="positive"),
    _key("items_per_s", "number", "items/s", "`items_per_round` / median round time", **R, constraint="positive"),
    _key("latency_per_item_s", "number", "s", "median round time / `items_per_round`", **R, constraint="positive"),
    _key(
        "flops_per_item", "number", "FLOP",
        "FLOPs per item as `torch.utils.flop_counter` counts them on the fp32 reference model (quantized variants "
        "carry their reference's count: same arithmetic)", **R, constraint="nonnegative",
    ),
    _key("achieved_flops_per_s", "number", "FLOP/s", "`flops_per_item` × `items_per_s`", **R, constraint="nonnegative"),
    _key("peak_flops_per_s", "number", "FLOP/s", "the calibrated peak of this device for this dtype", **R, constraint="positive"),
    _key(
        "roofline_fraction", "number", "0..1",
        "`achieved_flops_per_s` / `peak_flops_per_s`: how close to this machine's own limit", **R, constraint="nonnegative",
    ),
    _key("params", "int", "count", "model parameters", **R, constraint="nonnegative"),
    _key(
        "model_bytes", "int", "bytes",
        "size of the saved model artefact (checkpoint directory, SavedModel, scripted file, …)", **R, constraint="nonnegative",
    ),
    _key(
        "peak_mem_bytes", "int", "bytes",
        "peak memory in use during one call above what was in use before it: CUDA `max_memory_allocated`; CPU growth "
        "of the process's resident set (`VmHWM`), not counting worker processes", **R, constraint="nonnegative",
    ),
    _key("setup_s", "number", "s", "loading / compiling / exporting the model, never inside the timed loop", **R, constraint="nonnegative"),
    _key(
        "contention", "object", "—",
        "what else used the machine from the first warm-up round to the last timed round: `other_cpu_fraction` "
        "(CPU time of other processes over the CPUs' capacity, 0..1, from `/proc/stat` minus this process tree, "
        "workers and servers included), `steal_fraction` (time the hypervisor gave to other guests), `loadavg` "
        "(1-minute load average at the end), `window_s` (the window's length), `contended` (either fraction at or "
        "above 0.10; null when the window is under 20 CPU ticks), `reason` (why the fractions are null)", **R,
    ),
    _key(
        "energy_per_item_j", "number", "J",
        "energy over the timed rounds / items: the GPU's NVML counter on CUDA, the CPU packages' RAPL counters on the "
        "CPU (whole device or package, other work included); null where no counter is readable "
        "(`machine_info.inferperf.energy` says why)", **R, constraint="nonnegative",
    ),
    _key("mean_power_w", "number", "W", "energy over the timed rounds / their wall time", **R, constraint="nonnegative"),
    _key(
        "cost_per_million_items_usd", "number", "USD",
        "with `--price-per-hour`: what a million items cost at this throughput (price per second x seconds per item x 1e6)",
        constraint="nonnegative",
    ),
    _key(
        "device_s", "number", "s",
        "CUDA: median over the timed rounds of the time between CUDA events recorded at each round's start and end "
        "(the GPU's span of the round)", constraint="nonnegative",
    ),
    _key(
        "device_busy_s", "number", "s",
        "CUDA: GPU kernel time of one profiled round after the timed ones (CUPTI, via torch.profiler): the GPU's "
        "busy time, gaps excluded", constraint="nonnegative",
    ),
    _key(
        "host_overhead_fraction", "number", "0..1",
        "CUDA: 1 - `device_busy_s` / median round time: the share of a round the GPU sat idle waiting for the host "
        "(launches, Python, data); near 1 is a launch- or host-bound case", constraint="fraction",
    ),
    _key(
        "compile", "object", "—",
        "compiled rungs and variants: what `torch._dynamo` counted while compiling: `graphs`, `graph_breaks` and the "
        "top `break_reasons`, `recompiles`, `frames_compiled` (Python frames compiled), `fx_graph_cache_hits` and "
        "`fx_graph_cache_misses` (Inductor's graph cache: a hit loads compiled code, and `setup_s` is then a fraction of a "
        "cold compile's), `cache_files_before` (files in Inductor's on-disk cache before the rung compiled: 0 is a cold "
        "cache; AOTInductor records only this)",
    ),
    _key(
        "quant_config", "str", "—",
        "torchao rungs: the configuration used (torchao's recommendation for the device: `Int8DynamicActivationInt8WeightConfig` "
        "on the CPU and when compiled on CUDA, `Int8WeightOnlyConfig` in eager mode on CUDA, float8 per row)",
    ),
    _key("aoti_probe", "bool", "—", "ladder `aoti`: the package was first loaded and run in a probe process"),
    _key(
        "baseline_case_id", "str", "—",
        "the case this variant's speedup is measured against (same run); `inferperf compare` and `inferperf report` use it",
    ),
    _key("weights", "str", "—", "`random-init` or `user` (`--weights`)"),
    _key("checkpoint_build_s", "number", "s", "building and saving the random-init checkpoint (0 for user weights)", constraint="nonnegative"),
    _key(
        "stage_s", "object", "s",
        "batching, preprocess + training: median seconds per round per stage (`data`: decode + preprocess or waiting "
        "for workers; `model`/`train`)",
    ),
    _key("dominant_stage", "str", "—", "the stage with the largest `stage_s`"),
    _key("images", "int", "images", "images per round (the N of the workload)", constraint="positive"),
    _key("loader_workers", "int", "processes", "DataLoader worker processes", constraint="nonnegative"),
    _key("pipeline", "str", "—", "preprocess: the pipeline (`pillow_w0`, `tv_cpu`, `dali_gpu_file`, …)"),
    _key("engine", "str", "—", "preprocess: `pillow`, `torchvision` or `dali`"),
    _key("decode_device", "str", "—", "preprocess: where JPEG decoding ran (`cpu`, `cuda`)"),
    _key("resize_device", "str", "—", "preprocess: where resize/crop/normalize ran"),
    _key(
        "reader", "str", "—",
        "preprocess: how files were read (`dataloader`, `decode_jpeg`, DALI `file` reader, DALI `external` source)",
    ),
    _key(
        "recipe", "str", "—",
        "preprocess: `resize240` (decode, resize 240x240, uint8 CHW) or `imagenet224` (resize 256, crop 224, normalize)",
    ),
    _key("dali_threads", "int", "threads", "preprocess: DALI's CPU worker threads (null for other engines)", constraint="positive"),
    _key("train_device", "str", "—", "preprocess + training: where the CNN trained"),
    _key(
        "agreement", "object", "—",
        "ladder: `cosine` of logits and `top1_match` fraction vs eager on `images` corpus images; generation: "
        "`same_prefix_fraction` (of eager's greedy tokens, those matched before the first divergence; the worst "
        "request), `tokens_equal`, `cosine` of the first generated position's logits (worst request; null for "
        "continuous batching, which returns no logits), `requests`; pipeline: `cosine` "
        "of image embeddings vs fp32, `decisions_same` (fraction of crop×query decisions unchanged at each "
        "threshold), `score_shift_mean_abs` and `score_shift_max_abs` (softmax scores), `top_query_same` (fraction "
        "of crops whose best query is unchanged), `positives` per threshold, `crops`",
    ),
    _key(
        "warnings", "list", "—",
        "ladder: deprecation/user warnings raised while preparing the rung; preprocess: warnings the pipeline raised "
        "(torchvision's decode deprecation) — each once, not per round",
    ),
    _key("quantized_engine", "str", "—", "ladder: quantized engine used by dynamic int8 (`x86`)"),
    _key(
        "lite_of", "str", "—",
        "ladder: which model the lite-interpreter file was made from (`qdyn_mobile`, or `qdyn_script` where "
        "`optimize_for_mobile` is unavailable)",
    ),
    _key("executorch_backend", "str", "—", "ladder: the ExecuTorch delegate (`xnnpack`)"),
    _key("crops", "int", "crops", "pipeline: crops scored per image (one round)", constraint="positive"),
    _key(
        "first_call_s", "number", "s",
        "pipeline: the first (untimed) scoring of the image; for compiled variants it includes compilation, which is "
        "also added to `setup_s`", constraint="nonnegative",
    ),
    _key("image_size", "int|list", "pixels", "pipeline: the detector's image (w, h); zoo: the model's square input side"),
    _key("export_s", "number", "s", "zoo: building and exporting the SavedModel / saving the timm checkpoint", constraint="nonnegative"),
    _key("framework", "str", "—", "zoo: `keras` or `timm`"),
    _key("protocol", "str", "—", "zoo: `grpc` or `http` (KServe v2)"),
    _key("endpoint", "str", "—", "zoo: `host:port` the requests went to"),
    _key("server", "str", "—", "zoo: `triton (pytriton)` when the session started it, `--served-url` otherwise"),
    _key("clients", "int", "clients", "served load: concurrent clients, each with its own connection", constraint="positive"),
    _key("requests_per_client", "int", "requests", "served load: batch-1 requests each client sends per round", constraint="positive"),
    _key("dynamic_batching", "bool", "—", "served load: Triton's dynamic batcher on (`true`) or off"),
    _key("latency_p50_s", "number", "s", "served load: median request latency over all timed rounds' requests", constraint="nonnegative"),
    _key("latency_p90_s", "number", "s", "served load: 90th percentile request latency", constraint="nonnegative"),
    _key("latency_p99_s", "number", "s", "served load: 99th percentile request latency", constraint="nonnegative"),
    _key(
        "request_latencies_s", "list", "s",
        "served load: every timed request's latency (the raw samples of the percentiles)",
    ),
    _key(
        "server_mean_batch", "number", "items",
        "served load: Triton's inference count / execution count for the model: how many requests it batched per "
        "execution", constraint="nonnegative",
    ),
)


#: technique 6, text generation (``generation/…``): items are output tokens, so ``items_per_s`` is
#: output tokens/s, ``latency_per_item_s`` seconds per output token, energy and cost per token
GENERATION: tuple[Key, ...] = (
    _key("prompt_len", "int", "tokens", "generation: tokens per prompt (case axis; mixed-length batches: the longest)", constraint="positive"),
    _key("output_len", "int", "tokens", "generation: new tokens per request (case axis; mixed-length batches: the longest)", constraint="positive"),
    _key("requests", "int", "requests", "generation: requests in one round", constraint="positive"),
    _key("prompt_tokens", "int", "tokens", "generation: prompt tokens of all requests of a round", constraint="nonnegative"),
    _key("output_tokens", "int", "tokens", "generation: tokens generated per round, all requests (each exactly its forced length)", constraint="nonnegative"),
    _key(
        "output_len_forced", "bool", "—",
        "generation: every timed round generated exactly the requested tokens for every request (greedy, "
        "`max_new_tokens` = the request's length, no end-of-sequence id: `eos_token_id=-1` in `generate` and "
        "continuous batching alike)",
    ),
    _key("ttft_s", "number", "s", "generation: time to first token, median over requests (call start → first new token on the host: the prefill)", constraint="nonnegative"),
    _key("ttft_p99_s", "number", "s", "generation: 99th percentile of time to first token over the timed rounds' requests", constraint="nonnegative"),
    _key("tpot_s", "number", "s", "generation: time per output token after the first, (last − first token) / (N − 1), median over requests", constraint="nonnegative"),
    _key("e2e_s", "number", "s", "generation: call start → last token, median over requests (= `ttft_s` + (N − 1) × `tpot_s` per request)", constraint="nonnegative"),
    _key("token_latency_p50_s", "number", "s", "generation: median gap before each token after the first (a gap shared by k tokens that arrived together counts g/k for each)", constraint="nonnegative"),
    _key("token_latency_p90_s", "number", "s", "generation: 90th percentile of the per-token gaps", constraint="nonnegative"),
    _key("token_latency_p99_s", "number", "s", "generation: 99th percentile of the per-token gaps", constraint="nonnegative"),
    _key("output_tokens_per_s", "number", "tokens/s", "generation: output tokens of a round / median round time (aggregate over the batch)", constraint="nonnegative"),
    _key("sequence_output_tokens_per_s", "number", "tokens/s", "generation: one request's tokens / its end-to-end time, median over requests", constraint="nonnegative"),
    _key("prefill_tokens_per_s", "number", "tokens/s", "generation: prompt tokens of a round / `ttft_s`", constraint="nonnegative"),
    _key(
        "round_metrics", "object", "—",
        "generation: per timed round, in order, `ttft_s` and `tpot_s` (medians over its requests) and "
        "`output_tokens_per_s`: the per-round values a comparison judges",
    ),
    _key(
        "kv_cache_bytes", "int", "bytes",
        "generation: keys and values the cache holds at its largest (static: every position it was sized for; "
        "dynamic: prompt + output; continuous: its pages)", constraint="nonnegative",
    ),
    _key("weight_bytes", "int", "bytes", "generation: weights one decode step reads (in their stored dtype; the input embedding table only when tied to the head)", constraint="nonnegative"),
    _key(
        "decode_step_bytes", "int", "bytes",
        "generation: `weight_bytes` + the KV cache one decode step reads at the mean context length, all sequences of the "
        "round (a static cache is read whole)", constraint="nonnegative",
    ),
    _key("peak_bandwidth_bytes_per_s", "number", "bytes/s", "generation: the calibrated memory bandwidth of the device (`machine_info` calibration)", constraint="positive"),
    _key(
        "decode_bandwidth_fraction", "number", "ratio",
        "generation: `decode_step_bytes` / `tpot_s` / `peak_bandwidth_bytes_per_s`: how close decoding comes to the "
        "memory-bandwidth limit (above 1: the weights fit in the CPU's caches)", constraint="nonnegative",
    ),
    _key(
        "padding_waste_fraction", "number", "0..1",
        "generation: share of the token slots a left-padded batch computes that are padding or tokens past a "
        "request's own length (0 for equal-length batches; null for continuous batching)", constraint="fraction",
    ),
    _key(
        "acceptance_rate", "number", "0..1",
        "generation, speculative variants: draft tokens the target accepted / draft tokens proposed (one untimed "
        "run; with random weights set by the model's construction, with `--weights` the real rate)", constraint="fraction",
    ),
    _key("speculation", "object", "—", "generation, speculative variants: `proposed_tokens`, `accepted_tokens`, `verify_steps` (target forwards that checked a proposal)"),
    _key("draft_layers", "int", "layers", "generation `assisted`: layers of the draft model", constraint="positive"),
    _key("cache_implementation", "str", "—", "generation: `static` for the static-KV-cache variants"),
    _key(
        "compile_mode", "str", "—",
        "generation `static_compile`: how the forward was compiled (CPU: `model.forward = torch.compile(model.forward)`, "
        "Inductor default mode; CUDA: generate's automatic compile with `mode='reduce-overhead'`, CUDA graphs)",
    ),
    _key("kv_pages", "int", "pages", "generation `continuous`: KV-cache pages (64 tokens each) the manager was given", constraint="positive"),
    _key("model_bytes_note", "str", "—", "why `model_bytes` is null (torchao's int4 prototype tensors cannot be saved)"),
)

#: technique 6 served (``generation/…-served_<server>_<load>…``), ``inferperf.metrics.served``:
#: latency from the send and from the scheduled time, goodput, the client's self-check
SERVED: tuple[Key, ...] = (
    _key("served_model", "str", "—", "served generation: the model name the requests asked for (`--served-model`, or the served directory)"),
    _key("chunk_token_source", "str", "—", "served generation: where each chunk's token count came from (the server's running usage, the client tokenizer, or one per chunk)"),
    _key(
        "load", "object", "—",
        "served: the load point — `mode` (closed, sessions, constant, poisson, gamma, trace), `label` (closed loop / open loop …), `concurrency` "
        "(closed loop streams or sessions at once), `rate_rps` (open-loop arrivals/s; a trace's mean), `max_in_flight` (cap, or null), `seed` "
        "(the arrival schedule's), and where set `burstiness` (gamma shape), `duration_s` (a closed loop's bound), `speed` (trace speed-up)",
    ),
    _key("slo", "object", "s", "served: the bounds a good request meets (`ttft_s`, `tpot_s`, `e2e_s`; from `--slo` or the tier's default)"),
    _key("requests_sent", "int", "requests", "served: requests the timed rounds sent (failed ones included)", constraint="nonnegative"),
    _key("requests_completed", "int", "requests", "served: requests that finished with a `finish_reason` and no error", constraint="nonnegative"),
    _key("requests_failed", "int", "requests", "served: requests sent − completed (HTTP errors, timeouts, cut or malformed streams)", constraint="nonnegative"),
    _key("error_rate", "number", "0..1", "served: failed / sent", constraint="fraction"),
    _key("errors", "list", "—", "served: up to five distinct error lines, each naming its request"),
    _key("finish_reasons", "list", "—", "served: the distinct `finish_reason`s the server gave (`length` when the output length was forced)"),
    _key("token_count_mismatches", "int", "requests", "served: requests whose client-tokenizer count (prompt or completion) differs from the server's `usage`", constraint="nonnegative"),
    _key(
        "latency_distributions", "object", "s",
        "served: per latency (`ttft_from_send_s`, `ttft_from_schedule_s`, `tpot_s`, `itl_per_token_s`, `itl_per_chunk_s`, "
        "`e2e_from_send_s`, `e2e_from_schedule_s`, `client_queue_wait_s`): `n`, `mean`, `max`, `p50`/`p90`/`p99`/`p999` and each "
        "one's 95% distribution-free interval (`p99_ci`: [low, high] order statistics; null when too few values)",
    ),
    _key("ttft_p99_from_schedule_s", "number", "s", "served: 99th percentile of TTFT from the scheduled time (queueing in the client included)", constraint="nonnegative"),
    _key("e2e_p99_from_schedule_s", "number", "s", "served: 99th percentile of scheduled time → last token", constraint="nonnegative"),
    _key("tpot_p99_s", "number", "s", "served: 99th percentile over requests of (E2E − TTFT) / (N − 1)", constraint="nonnegative"),
    _key("chunk_latency_p99_s", "number", "s", "served: 99th percentile of the gaps between streamed chunks (ITL per chunk, what tools that count chunks as tokens report)", constraint="nonnegative"),
    _key("requests_per_s", "number", "requests/s", "served: completed requests / the rounds' windows (first scheduled send → last completion)", constraint="nonnegative"),
    _key("total_tokens_per_s", "number", "tokens/s", "served: (prompt + output tokens of completed requests) / the windows", constraint="nonnegative"),
    _key("goodput_rps", "number", "requests/s", "served: requests meeting every SLO bound (TTFT and E2E from the schedule, TPOT) / the windows", constraint="nonnegative"),
    _key("good_fraction", "number", "0..1", "served: requests meeting every SLO bound / requests sent", constraint="fraction"),
    _key(
        "self_check", "object", "—",
        "served: the client's check of itself, worst round — send side: `achieved_rate_rps` vs `schedule_rate_rps`, `dispatch_lag_p50_s`/"
        "`dispatch_lag_p99_s` (when the generator got to a request − its scheduled time), `lag_bound_p99_s`; receive side: "
        "`stamp_source` (`kernel`: the socket's receive stamps, `user`: when the loop read), `receive_lag_p50_s`/`receive_lag_p99_s` "
        "(user-space − kernel stamp per read), `loop_lag_p99_s` (lateness of a 5 ms timer), `shared_read_chunk_fraction` (chunks "
        "read together with a later one), `ttft_p50_stamp_error_bound_s`, `ttft_p99_stamp_error_bound_s`, `itl_p50_stamp_error_bound_s`, "
        "`itl_p99_stamp_error_bound_s` (how far the reported percentiles can be from the truth, s); "
        "`client_cpu_fraction` (client CPU time / wall), `valid`, `invalid_reason`",
    ),
    _key("valid", "bool", "—", "served: the client kept its schedule (achieved ≥ 95% of the schedule's rate, lag within bounds), its stamps were good to the fidelity bound (1 ms at p50, 5 ms at p99) and it stayed below 90% of a core; false: not the server's latency"),
    _key("invalid_reason", "str", "—", "served: why `valid` is false"),
    _key("max_rate_meeting_slo_rps", "number", "requests/s", "served capacity: the highest Poisson rate probed whose p99 TTFT (from the schedule) and p99 TPOT met the SLO (null: not even the lowest)", constraint="nonnegative"),
    _key("capacity_probes", "list", "—", "served capacity: each probed rate with `meets_slo`, its p99s, error rate, validity, `repeat` (0: the search; 1…: the repeats near the boundary) and `attempt` (0; 1…: the same schedule run again because the client could not keep it — an invalid probe is not an SLO miss and counts for nothing)"),
    _key("capacity_interval_rps", "list", "requests/s", "served capacity: [low, high] — every repeated probe at `low` met the SLO and at least half of those at `high` did not (high null: the search's top rate met it); invalid probes are left out"),
    _key("goodput_curve", "list", "—", "served capacity: each probed rate (`rate_rps`) with `goodput_rps`, `ttft_p99_from_schedule_s` and `meets_slo`, in rate order (the last valid probe of a rate)"),
    _key("endpoint_api", "str", "—", "served generation: `completions` (/v1/completions) or `chat` (/v1/chat/completions)"),
    _key("traffic", "object", "—", "served generation: the traffic sent — `spec` (`--traffic`), `kind`, `tokenizer` (whose tokens the lengths are in), `requests`, `prompt_tokens_mean`/`prompt_tokens_max`, `output_tokens_mean`, `shared_prefix_groups`, `sessions`, `turns_max`"),
    _key("ttft_first_turn_p50_s", "number", "s", "served, multi-turn: median TTFT of the sessions' first turns", constraint="nonnegative"),
    _key("ttft_later_turns_p50_s", "number", "s", "served, multi-turn: median TTFT of later turns (each carries the session's history)", constraint="nonnegative"),
    _key("turns_completed", "int", "requests", "served, multi-turn: turns that completed", constraint="nonnegative"),
    _key("reasoning_tokens_per_request", "number", "tokens", "served, chat: reasoning tokens (`reasoning_content`/`reasoning` deltas) per completed request", constraint="nonnegative"),
    _key("tool_call_tokens_per_request", "number", "tokens", "served, chat: tool-call argument tokens per completed request", constraint="nonnegative"),
    _key("content_tokens_per_request", "number", "tokens", "served, chat: answer (content) tokens per completed request", constraint="nonnegative"),
    _key("ttft_content_p50_s", "number", "s", "served, chat: median send → first content token (after any reasoning)", constraint="nonnegative"),
    _key("server_metrics", "object", "—", "served: the server's own Prometheus `/metrics` sampled during each timed round (vLLM's names) — per round `running_mean`/`running_max`, `waiting_mean`/`waiting_max` (requests), `kv_cache_usage_mean`/`kv_cache_usage_max` (0..1), from the samples inside the round (absent when none); `prefix_cache_hit_rate` (hits/queries over the round); `samples` (inside the round), `period_s` (s between them; 0: only before and after the round), `scrape_s_mean` (s one sample took the server); null where the server exposes none"),
    _key("prefix_caching", "bool", "—", "served vLLM: automatic prefix caching on (`true`) or off"),
)

EXTRA_INFO = EXTRA_INFO + GENERATION + SERVED

MACHINE_KEYS: Mapping[str, Key] = {k.name: k for k in MACHINE}
EXTRA_INFO_KEYS: Mapping[str, Key] = {k.name: k for k in EXTRA_INFO}
#: keys that must hold a positive number whenever timing ran
MEASURED_KEYS: tuple[str, ...] = ("items_per_s", "latency_per_item_s")


def key_problems(keys: Mapping[str, Key], values: Mapping[str, Any], where: str, *, require: bool) -> list[str]:
    """Type problems of the documented keys in ``values`` (and, with ``require``, missing or undocumented keys)."""
    problems = []
    for name, value in values.items():
        key = keys.get(name)
        if key is None:
            if require:
                problems.append(f"{where}.{name} is not documented (add it to inferperf/record/keys.py)")
            continue
        kind_of = type(value)  # the common cases first: millions of values in a fleet's comparison
        if kind_of in key.plain_types or (kind_of in key.number_types and key.fine_number(value)):
            continue
        problem = key.problem(value)
        if problem:
            problems.append(f"{where}.{name} {problem}")
    if require:
        problems += [f"{where}.{k.name} is missing" for k in keys.values() if k.required and k.name not in values]
    return problems


# --------------------------------------------------------------------------------------------
# The documentation's key tables (docs/record.md), rendered from the registry


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def machine_table() -> str:
    rows = ["| key | type | meaning |", "|---|---|---|"]
    rows += [f"| `{k.name}` | {k.type_name}{', always' if k.required else ''} | {_cell(k.meaning)} |" for k in MACHINE]
    return "\n".join(rows)


def extra_info_table() -> str:
    rows = ["| key | type | unit | meaning |", "|---|---|---|---|"]
    rows += [
        f"| `{k.name}` | {k.type_name}{', always' if k.required else ''} | {k.unit} | {_cell(k.meaning)} |"
        for k in EXTRA_INFO
    ]
    return "\n".join(rows)


#: docs/record.md marks each generated table with these comments
TABLES = {"machine-keys": machine_table, "extra-info-keys": extra_info_table}


def render_readme(text: str) -> str:
    """``text`` with every marked key table replaced by the registry's rendering."""
    for marker, render in TABLES.items():
        pattern = re.compile(rf"(<!-- {marker} -->\n)(?:.*?\n)?(<!-- /{marker} -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"the page has no <!-- {marker} --> ... <!-- /{marker} --> block")
        text = pattern.sub(lambda m: m.group(1) + render() + "\n" + m.group(2), text)
    return text


def main(argv: Sequence[str]) -> int:
    """``python -m inferperf.record.keys docs/record.md``: rewrite the key tables in place."""
    if len(argv) != 1:
        print("usage: python -m inferperf.record.keys docs/record.md", file=sys.stderr)
        return 2
    path = Path(argv[0])
    path.write_text(render_readme(path.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
