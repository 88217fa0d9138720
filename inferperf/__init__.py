"""inferperf: measure inference-speed techniques on the hardware at hand, and compare runs.

The package is split so that ``inferperf.analysis`` (and the ``inferperf`` command line) never
imports torch, TensorFlow or DALI: comparisons run anywhere the JSON records can be read.
"""

__version__ = "0.1.0"
