"""``inferperf ab``'s running side: sides, interleaved blocks of fresh pytest processes, the power pool.

- ``sides``: a side is a directory (a checkout) or a git ref checked out into a temporary worktree,
  with its interpreter, environment and extra pytest arguments;
- ``blocks``: each block runs both sides once, each in a fresh ``python -m pytest … --benchmark-json``
  child (``inferperf.children``: own session, bounded by ``--run-timeout``), in a seeded random order;
  every run and the design (``ab.json``) kept, never overwritten;
- ``power``: ``detection-power --ab``, the design measured on a known numpy workload.

Judging the blocks is analysis (``inferperf.analysis.ab_verdicts``): it reads the stored runs only.
Nothing here imports torch: the sides' processes do the measuring. It may import ``record``,
``analysis`` and ``children``; nothing of the measuring side imports it.
"""

#: a side's run that has not ended after this long is stopped and recorded as failed (``ab --run-timeout``)
DEFAULT_RUN_TIMEOUT_S = 3600.0
