"""The analysis' defaults and settings, in one place, each validating itself.

Every threshold a verdict depends on has one default here; the command line, the settings
objects and the documentation read it from here. A setting out of range (or NaN/infinite) raises
``SettingError`` naming the command-line option, which the CLI prints as one line with exit 2.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: smallest relative change a verdict calls faster/slower (and history calls a step); chosen from
#: the A/A experiments in docs/measurement-quality.md
DEFAULT_MIN_CHANGE = 0.03
#: significance level of compare's and ab's tests
DEFAULT_ALPHA = 0.01
#: coverage of the confidence intervals
DEFAULT_CONFIDENCE = 0.95
#: bootstrap resamples per side
DEFAULT_BOOTSTRAP = 2000
#: PELT penalty per change point, times log(number of runs)
DEFAULT_PENALTY = 4.0
#: smallest confidence (1 - two-sided p) of a history step
DEFAULT_STEP_CONFIDENCE = 0.99
#: trend plots a machine's page of `history --output` gets by default (``--max-plots``): a PNG
#: costs about 0.1 s, so a fleet's 25,000 series would take 40 minutes; past this, the series with
#: steps come first
DEFAULT_MAX_PLOTS = 200


class SettingError(ValueError):
    """A setting out of range; the message starts with the option's name."""


def check_range(
    option: str,
    value: float,
    *,
    low: float | None = None,
    high: float | None = None,
    low_inclusive: bool = True,
    high_inclusive: bool = True,
    expected: str = "",
) -> float:
    """``value`` if it is a finite number inside the range, else ``SettingError`` naming ``option``."""
    inside = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if inside and low is not None:
        inside = value >= low if low_inclusive else value > low
    if inside and high is not None:
        inside = value <= high if high_inclusive else value < high
    if not inside:
        if not expected:
            left = "[" if low_inclusive else "("
            right = "]" if high_inclusive else ")"
            expected = f"a finite number in {left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
        raise SettingError(f"{option}: expected {expected}, got {value!r}")
    return value


def check_min_change(value: float) -> float:
    return check_range("--min-change", value, low=0, high=10, high_inclusive=False, expected="a fraction such as 0.03 (0 <= m < 10)")


def check_probability(option: str, value: float) -> float:
    return check_range(option, value, low=0, high=1, low_inclusive=False, high_inclusive=False, expected="a probability in (0, 1)")


@dataclass(frozen=True)
class Thresholds:
    """What ``compare`` (and ``ab``) call a change: significance, a minimum effect, interval coverage."""

    min_change: float = DEFAULT_MIN_CHANGE
    alpha: float = DEFAULT_ALPHA
    confidence: float = DEFAULT_CONFIDENCE
    resamples: int = DEFAULT_BOOTSTRAP

    def __post_init__(self) -> None:
        check_min_change(self.min_change)
        check_probability("--alpha", self.alpha)
        check_probability("--confidence", self.confidence)
        check_range("resamples", self.resamples, low=10, expected="at least 10 bootstrap resamples")


@dataclass(frozen=True)
class HistorySettings:
    """What ``history`` calls a step: size, penalty per change and confidence."""

    min_change: float = DEFAULT_MIN_CHANGE
    penalty: float = DEFAULT_PENALTY
    confidence: float = DEFAULT_STEP_CONFIDENCE

    def __post_init__(self) -> None:
        check_min_change(self.min_change)
        check_range("--penalty", self.penalty, low=0, low_inclusive=False, expected="a finite number > 0")
        check_probability("--confidence", self.confidence)
