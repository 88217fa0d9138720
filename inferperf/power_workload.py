"""A pytest-benchmark test of known work, for measuring the ``inferperf ab`` design itself.

``inferperf detection-power --ab`` copies this file into an empty folder and runs it as a suite of
its own in fresh processes; ``INFERPERF_POWER_SLOWDOWN=0.05`` makes the candidate do 5% more of
the same work (105 units of a chain of small matrix products instead of 100), a real slowdown.
"""

import os

import numpy as np

UNITS = 100
SIZE = 96
ROUNDS = 20


def test_power_workload(benchmark):
    slowdown = float(os.environ.get("INFERPERF_POWER_SLOWDOWN", "0"))
    units = int(round(UNITS * (1 + slowdown)))
    rng = np.random.default_rng(0)
    a = rng.standard_normal((SIZE, SIZE))
    b = rng.standard_normal((SIZE, SIZE)) / SIZE

    def chain():
        x = a
        for _ in range(units):
            x = x @ b
        return x

    benchmark.extra_info["units"] = units
    benchmark.pedantic(chain, rounds=ROUNDS, warmup_rounds=2, iterations=1)
