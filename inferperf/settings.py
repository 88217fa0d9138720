"""Run settings taken from the command line, and the per-tier measurement budget."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

from inferperf.cases import DEVICES, TIERS, Device, Tier
from inferperf.serving.endpoints import OpenAIEndpoint, TritonEndpoint


@dataclass(frozen=True)
class Budget:
    """How many times a benchmark's step runs: warm-up rounds (untimed) then timed rounds."""

    rounds: int
    warmup_rounds: int = 1
    #: cap on the timed rounds' total seconds, judged from the last warm-up round: a case that is
    #: slow on this hardware (bf16 or int8 without native support, say) runs fewer rounds, never
    #: fewer than ``min_rounds``, so the quick tier stays near its time budget everywhere.
    #: ``--rounds`` lifts the cap.
    max_time_s: float | None = None
    min_rounds: int = 3

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds}")
        if self.warmup_rounds < 0:
            raise ValueError(f"warmup_rounds must be >= 0, got {self.warmup_rounds}")
        if self.max_time_s is not None and self.max_time_s <= 0:
            raise ValueError(f"max_time_s must be > 0, got {self.max_time_s}")

    def rounds_for(self, round_s: float | None) -> int:
        """Timed rounds for a step whose warm-up round took ``round_s`` seconds."""
        if self.max_time_s is None or not round_s or round_s <= 0:
            return self.rounds
        fitting = int(self.max_time_s // round_s)
        return max(min(self.rounds, self.min_rounds), min(self.rounds, fitting))


@dataclass(frozen=True)
class Settings:
    tier: Tier = "quick"
    #: devices the user asked for; a requested but absent device still yields skipped cases.
    devices: tuple[Device, ...] = DEVICES
    threads: int | None = None
    weights_dir: Path | None = None
    rounds: int | None = None
    warmup_rounds: int | None = None
    #: ``--served-url`` as given (passed on to ``--isolate``'s children) ...
    served_url: str | None = None
    #: ``--served-model``: the model an OpenAI-compatible ``--served-url`` serves
    served_model: str | None = None
    #: ... and parsed once (``inferperf.serving.endpoints.parse_served_url``): the endpoint of its family
    served: TritonEndpoint | OpenAIEndpoint | None = None
    #: ``--slo``: served generation's latency bounds, as written (``inferperf.metrics.served.parse_slo``)
    slo: str | None = None
    #: ``--client-workers``: client processes for served load (None: auto)
    client_workers: int | None = None
    #: ``--ray-address``: run those workers as Ray actors on this cluster (``local``: a local instance)
    ray_address: str | None = None
    #: ``--load``: served generation's load points as written (``inferperf.serving.loadspec``; empty: the tier's)
    loads: tuple[str, ...] = ()
    #: ``--traffic``: what served requests say (``inferperf.serving.traffic``; None: the tier's fixed lengths)
    traffic: str | None = None
    #: ``--tokenizer``: whose tokens the prompt lengths are in (None: the served artefact's)
    tokenizer_dir: Path | None = None
    #: ``--served-api``: the endpoints measured
    served_apis: tuple[str, ...] = ("completions",)
    #: ``--vllm-python``: vLLM's environment's interpreter (None: $INFERPERF_VLLM_PYTHON or .venv-vllm/bin/python)
    vllm_python: Path | None = None
    #: ``--price-per-hour``: what the machine costs, for ``cost_per_million_items_usd``
    price_per_hour: float | None = None
    #: ``--server-metrics-period``: seconds between samples of a server's ``/metrics`` inside a round
    #: (0: only before and after it); None: ``inferperf.serving.server_metrics.PERIOD_S``
    server_metrics_period_s: float | None = None
    #: ``--served-requests``: where served generation writes each timed request's record (None: nowhere)
    served_requests_dir: Path | None = None

    def budget(self, per_tier: Mapping[Tier, Budget]) -> Budget:
        """The benchmark's own budget for this tier, with ``--rounds``/``--warmup-rounds`` applied."""
        chosen = per_tier[self.tier]
        if self.rounds is not None:
            chosen = replace(chosen, rounds=self.rounds, max_time_s=None)
        if self.warmup_rounds is not None:
            chosen = replace(chosen, warmup_rounds=self.warmup_rounds)
        return chosen

    def weights_for(self, model_key: str) -> Path | None:
        """``--weights DIR``: a user's checkpoint for ``model_key`` lives in ``DIR/<model_key>/``."""
        if self.weights_dir is None:
            return None
        candidate = self.weights_dir / model_key
        return candidate if candidate.is_dir() else None


def parse_devices(value: str) -> tuple[Device, ...]:
    """``--device``: ``cpu``, ``cuda``, ``all``, or a comma list such as ``cpu,cuda``."""
    if value == "all":
        return DEVICES
    chosen = tuple(part.strip() for part in value.split(",") if part.strip())
    unknown = [d for d in chosen if d not in DEVICES]
    if unknown or not chosen:
        raise ValueError(f"--device: expected cpu, cuda, all or a comma list of them, got {value!r}")
    return chosen  # type: ignore[return-value]


def parse_tier(value: str) -> Tier:
    if value not in TIERS:
        raise ValueError(f"--tier: expected one of {', '.join(TIERS)}, got {value!r}")
    return value  # type: ignore[return-value]
