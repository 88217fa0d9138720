"""``inferperf report``: one run as the documentation's tables, one per technique, the served goodput
curves, then the skipped cases; ``--html`` the same as a page with the goodput plot."""

from __future__ import annotations

import argparse
import html
import sys

from inferperf.analysis.goodput import goodput_plot, goodput_table
from inferperf.analysis.run_report import skipped_table, technique_tables
from inferperf.commands import EXIT_OK, UsageError
from inferperf.commands.common import outputs_for, select_cases, write
from inferperf.record.load import load_run
from inferperf.text import shown


def run(args: argparse.Namespace) -> int:
    select = select_cases(args.k)
    outputs = outputs_for(args, ("html",), [args.run])
    loaded = load_run(args.run)
    selected = loaded.select(select)
    tables = technique_tables(selected)
    curves = goodput_table([selected])  # only where the selected cases hold served rates
    skipped = skipped_table([loaded], select)
    tables += [t for t in (curves, skipped) if t is not None]
    if not tables:
        raise UsageError(f"{shown(args.run)}: " + (f"no cases match -k {args.k!r}" if args.k else "holds no benchmarks"))
    if args.html:
        write(outputs, args.html, render_html(loaded.label, tables, goodput_plot([selected])), "--html")
        if args.html == "-":
            return EXIT_OK
    text = "\n\n".join(t.markdown() if args.markdown else t.text() for t in tables) + "\n"
    sys.stdout.write(text)
    return EXIT_OK


def render_html(label: str, tables: list, plot: str | None) -> str:
    """The run's tables as a page, with the goodput plot after them when the run has served rates."""
    from inferperf.analysis.compare_report import _STYLE

    parts = [f"<h1>inferperf report: {html.escape(label)}</h1>"]
    parts += [t.html() for t in tables]
    if plot:
        parts.append("<h2>Goodput curves</h2>")
        parts.append(f"<img alt='goodput and p99 TTFT against the offered rate' src='data:image/png;base64,{plot}'>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>inferperf report: {html.escape(label)}</title>"
            f"<style>{_STYLE}</style></head><body>{''.join(parts)}</body></html>\n")
