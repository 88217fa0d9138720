"""The server's own view of a round: its Prometheus ``/metrics`` sampled while the load runs.

vLLM, SGLang and TGI expose their scheduler's state: requests running and waiting, KV-cache use,
prefix-cache hits. Sampled through a round and kept beside the client's figures, a TTFT tail reads
against the server's queue and a prefix-caching finding against its hit rate.

The sampler is a process of its own (spawned at a case's first round, told to start and stop over a pipe):
fetching and parsing a page of metrics every ``PERIOD_S`` in the client's process would take the
client's loop away from its sends and reads. Parsing is ``prometheus_client``'s text parser (the
Prometheus project's own). Names are vLLM's, with SGLang's and TGI's mapped onto them.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import urllib.request
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

#: seconds between samples inside a round (``--server-metrics-period``). A sample is not free for
#: the server: vLLM renders its 70 KB page in about 8 ms on one core of a 2-core Zen 4, and its API
#: process streams no token meanwhile. At 4 samples a second its one-stream gaps over twice the
#: median went from 1.2-1.5% of all gaps to 2.6-3.8% and its ITL p99 up 37-53% (three pairs of
#: runs, docs/techniques/served-generation.md); once a second was within the runs' spread of none.
PERIOD_S = 1.0
#: gauge -> the names servers give it (vLLM, older vLLM, SGLang, TGI)
GAUGES: dict[str, tuple[str, ...]] = {
    "running": ("vllm:num_requests_running", "sglang:num_running_reqs", "tgi_batch_current_size"),
    "waiting": ("vllm:num_requests_waiting", "sglang:num_queue_reqs", "tgi_queue_size"),
    "kv_cache_usage": ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc", "sglang:token_usage"),
}
#: counters whose increase over a round makes the prefix-cache hit rate
PREFIX_HITS = ("vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total")
PREFIX_QUERIES = ("vllm:prefix_cache_queries_total", "vllm:gpu_prefix_cache_queries_total")


WANTED = frozenset({name for names in GAUGES.values() for name in names} | set(PREFIX_HITS) | set(PREFIX_QUERIES))


def parse(text: str) -> dict[str, float]:
    """One page of Prometheus text -> the known gauges and counters (summed over their labels).

    vLLM's page is mostly histogram buckets; only the wanted samples' lines reach the parser (a
    whole page parsed four times a second cost the client's core 2-3 ms of receive lag at p99)."""
    from prometheus_client.parser import text_string_to_metric_families

    kept = "\n".join(line for line in text.splitlines() if line.split("{", 1)[0].split(" ", 1)[0] in WANTED)
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(kept + "\n"):
        for sample in family.samples:
            if sample.name in WANTED:
                found[sample.name] = found.get(sample.name, 0.0) + float(sample.value)
    return found


def _page(url: str, timeout_s: float = 2.0) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return response.read().decode("utf-8", "replace")
    except Exception:  # no metrics page
        return None


def _parsed(page: str | None) -> dict[str, float] | None:
    try:
        return None if page is None else parse(page)
    except Exception:  # not Prometheus text: nothing to sample
        return None


def fetch(url: str, timeout_s: float = 2.0) -> dict[str, float] | None:
    return _parsed(_page(url, timeout_s))


def _timed_fetch(url: str) -> tuple[dict[str, float] | None, float]:
    """A sample and how long the server took to give it (its API process was busy about that long;
    the parsing here, after the page arrived, is not counted)."""
    started = time.perf_counter()
    page = _page(url)
    took = time.perf_counter() - started
    return _parsed(page), took


def _first(sample: dict[str, float], names: tuple[str, ...]) -> float | None:
    return next((sample[n] for n in names if n in sample), None)


def summarize(first: dict[str, float] | None, inside: list[dict[str, float]], last: dict[str, float] | None,
              *, period_s: float, scrape_s: list[float] | None = None) -> dict[str, object]:
    """A round's samples -> means and maxima of the gauges, and the prefix-cache hit rate over it.

    ``first`` and ``last`` are taken before the load's first request and after its end: the
    counters' baseline and total, but an idle server's gauges, so the gauges come from the samples
    ``inside`` the round only (none: no gauge). ``scrape_s``: how long each inside sample took."""
    summary: dict[str, object] = {"samples": len(inside), "period_s": period_s}
    if scrape_s:
        summary["scrape_s_mean"] = sum(scrape_s) / len(scrape_s)
    for gauge, names in GAUGES.items():
        values = [v for v in (_first(s, names) for s in inside) if v is not None]
        if values:
            summary[f"{gauge}_mean"] = sum(values) / len(values)
            summary[f"{gauge}_max"] = max(values)
    counted = [s for s in (first, *inside, last) if s is not None]
    hits = [v for v in (_first(s, PREFIX_HITS) for s in counted) if v is not None]
    queries = [v for v in (_first(s, PREFIX_QUERIES) for s in counted) if v is not None]
    if len(hits) >= 2 and len(queries) >= 2 and queries[-1] > queries[0]:
        summary["prefix_cache_hit_rate"] = (hits[-1] - hits[0]) / (queries[-1] - queries[0])
    return summary


def _serve(url: str, period_s: float, control: Connection) -> None:
    """The sampler process: on ``start`` sample until ``stop``, then send the round's summary back.

    ``period_s`` 0: only before and after the round, never while its load runs."""
    while True:
        message = control.recv()
        if message != "start":
            return
        first = fetch(url)  # the counters before the load's first request: the round's baseline
        inside: list[dict[str, float]] = []
        scrape_s: list[float] = []
        control.send("sampling")
        while not control.poll(period_s if period_s > 0 else None):
            found, took = _timed_fetch(url)
            if found is not None:
                inside.append(found)
                scrape_s.append(took)
        control.recv()  # "stop"
        last = fetch(url)  # the counters at the round's end
        control.send(summarize(first, inside, last, period_s=period_s, scrape_s=scrape_s))


@dataclass
class MetricsSampler:
    """Samples ``url`` (a server's ``/metrics``) from a process of its own, one round at a time."""

    url: str
    #: the cores the sampler runs on (the server's, when the suite pinned it), None: any
    cores: set[int] | None = None
    period_s: float = PERIOD_S
    rounds: list[dict[str, object]] = field(default_factory=list)
    _process: Any = field(default=None, repr=False)
    _control: Connection | None = field(default=None, repr=False)

    def start(self) -> None:
        if self._process is None:
            parent, child = multiprocessing.get_context("spawn").Pipe()
            self._process = multiprocessing.get_context("spawn").Process(target=_serve, args=(self.url, self.period_s, child), daemon=True)
            self._process.start()
            if self.cores:  # off the client's cores: its fetches would delay the client's reads
                try:
                    os.sched_setaffinity(self._process.pid, self.cores)
                except OSError:
                    pass
            self._control = parent
        assert self._control is not None
        self._control.send("start")
        # the first sample is taken before the load's first request (a fresh process imports first)
        if self._control.poll(30.0):
            self._control.recv()

    def stop(self) -> dict[str, object]:
        assert self._control is not None
        self._control.send("stop")
        summary = self._control.recv() if self._control.poll(10.0) else {"samples": 0}
        self.rounds.append(summary)
        return summary

    def close(self) -> None:
        if self._control is not None:
            try:
                self._control.send("quit")
            except OSError:
                pass
        if self._process is not None:
            self._process.join(5.0)
            if self._process.is_alive():
                self._process.kill()
        self._process = self._control = None


def sampler_for(base_url: str, cores: set[int] | None = None, period_s: float = PERIOD_S) -> MetricsSampler | None:
    """A sampler of the server at ``base_url`` (``http://host:port/v1``) if it serves known metrics,
    else None; ``cores``: where it runs (the server's own, when the suite pinned the server);
    ``period_s``: between samples inside a round (0: none inside)."""
    url = f"{base_url.rstrip('/').removesuffix('/v1')}/metrics"
    found = fetch(url)
    return MetricsSampler(url, cores, period_s) if found else None
