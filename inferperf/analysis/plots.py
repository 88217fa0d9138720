"""Matplotlib figures the reports embed: one headless figure of N panels, and its PNG as base64."""

from __future__ import annotations

import base64
import io
from typing import Sequence


def figure(panels: int, height: float, width: float = 10.0, ratios: Sequence[float] | None = None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(
        panels, 1, figsize=(width, height), squeeze=False, gridspec_kw={"height_ratios": list(ratios)} if ratios else None
    )
    return plt, figure, [row[0] for row in axes]


def encoded(plt, figure) -> str:
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return base64.b64encode(buffer.getvalue()).decode("ascii")
