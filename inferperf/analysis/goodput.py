"""The goodput curve of each served endpoint in a run: offered rate -> goodput and p99 TTFT.

Its points are the run's uncapped open-loop served cases (each offered a rate: ``load.rate_rps``) and the
capacity search's probes (``goodput_curve``), grouped by server and endpoint. Where goodput stops
following the offered rate, and p99 TTFT leaves the SLO, is the server's capacity; ``report``
shows the points as a table, ``report --html`` and ``compare --html`` as a plot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

from inferperf.analysis.tables import Table, fmt_seconds
from inferperf.record.run import Run
from inferperf.record.values import finite_number


@dataclass(frozen=True)
class CurvePoint:
    rate_rps: float
    goodput_rps: float | None
    ttft_p99_s: float | None
    meets_slo: bool | None
    #: the case it came from, or "capacity probe"
    source: str


@dataclass
class Curve:
    """One server and endpoint's points, in rate order, and the SLO's TTFT bound if one was recorded."""

    name: str
    points: list[CurvePoint] = field(default_factory=list)
    ttft_slo_s: float | None = None


def _group(extra: Mapping[str, object], case_id: str) -> str:
    server = str(extra.get("server") or case_id)
    api = str(extra.get("endpoint_api") or "completions")
    return f"{server} ({api})" if api != "completions" else server


def goodput_curves(run: Run) -> list[Curve]:
    """The run's goodput curves, one per served server and endpoint with at least one rate."""
    curves: dict[str, Curve] = {}
    for case_id, bench in sorted(run.benchmarks.items()):
        extra = bench.extra
        load = extra.get("load")
        probes = extra.get("goodput_curve")
        if not isinstance(load, Mapping) and not isinstance(probes, list):
            continue
        name = _group(extra, case_id)
        curve = curves.setdefault(name, Curve(name))
        slo = extra.get("slo")
        if isinstance(slo, Mapping) and finite_number(slo.get("ttft_s")) is not None:
            curve.ttft_slo_s = float(slo["ttft_s"])  # type: ignore[arg-type]
        if isinstance(probes, list):
            for probe in probes:
                rate = finite_number(probe.get("rate_rps")) if isinstance(probe, Mapping) else None
                if rate is not None:
                    curve.points.append(CurvePoint(rate, finite_number(probe.get("goodput_rps")), finite_number(probe.get("ttft_p99_from_schedule_s")),
                                                   probe.get("meets_slo") if isinstance(probe.get("meets_slo"), bool) else None, "capacity probe"))
            continue
        rate = finite_number(load.get("rate_rps")) if isinstance(load, Mapping) else None
        # a closed loop offers no rate; a capped one offers the client's cap as much as the rate
        if rate is None or load.get("mode") in ("closed", "sessions") or load.get("max_in_flight"):  # type: ignore[union-attr]
            continue
        curve.points.append(CurvePoint(rate, finite_number(extra.get("goodput_rps")), finite_number(extra.get("ttft_p99_from_schedule_s")),
                                       None, bench.field("variant") if bench.field("variant") != "-" else case_id.split("/", 1)[-1]))
    found = [c for c in curves.values() if c.points]
    for curve in found:
        curve.points.sort(key=lambda p: p.rate_rps)
    return found


def goodput_table(runs: Sequence[Run]) -> Table | None:
    rows = []
    for run in runs:
        for curve in goodput_curves(run):
            for point in curve.points:
                rows.append([curve.name, f"{point.rate_rps:.3g}", "-" if point.goodput_rps is None else f"{point.goodput_rps:.3g}",
                             fmt_seconds(point.ttft_p99_s), {True: "yes", False: "no", None: "-"}[point.meets_slo], point.source])
    if not rows:
        return None
    return Table("Goodput curves (offered rate -> goodput, p99 TTFT from the schedule)",
                 ["server", "offered rps", "goodput rps", "TTFT p99", "meets SLO", "from"], rows)


def goodput_plot(runs: Sequence[Run]) -> str | None:
    """Two panels — goodput against the offered rate (the diagonal: every request good), p99 TTFT
    against it (the SLO's bound dashed) — one line per server and endpoint; a base64 PNG or None."""
    curves = [(run, curve) for run in runs for curve in goodput_curves(run)]
    if not curves:
        return None
    from inferperf.analysis.plots import encoded, figure

    plt, drawing, (good, ttft) = figure(2, 7.0, 9.0)
    top = max(p.rate_rps for _, c in curves for p in c.points)
    good.plot([0, top], [0, top], color="#bbbbbb", linestyle=":", label="every request good")
    slos = set()
    for run, curve in curves:
        label = curve.name if len(runs) == 1 else f"{curve.name} — {run.label}"
        xs = [p.rate_rps for p in curve.points]
        good.plot(xs, [p.goodput_rps if p.goodput_rps is not None else float("nan") for p in curve.points], marker="o", label=label)
        ttft.plot(xs, [p.ttft_p99_s if p.ttft_p99_s is not None else float("nan") for p in curve.points], marker="o", label=label)
        if curve.ttft_slo_s is not None:
            slos.add(curve.ttft_slo_s)
    for bound in slos:
        ttft.axhline(bound, color="#c0392b", linestyle="--", linewidth=1, label=f"SLO p99 TTFT {bound:g} s")
    good.set_ylabel("goodput (requests/s)")
    ttft.set_ylabel("p99 TTFT from the schedule (s)")
    ttft.set_yscale("log")
    for axis in (good, ttft):
        axis.set_xlabel("offered rate (requests/s)")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    return encoded(plt, drawing)
