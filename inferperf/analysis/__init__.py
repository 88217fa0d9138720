"""Analysis of saved runs: statistics, comparisons, history, A/B verdicts, reports and exports.

Reads runs through ``inferperf.record`` and recomputes metrics with ``inferperf.metrics``; nothing
of the measuring side (``measure``, ``serving``, ``fixtures``) and no framework: it never imports
torch, TensorFlow or DALI (tests check this), so ``inferperf compare`` runs anywhere the JSON can
be read. May import: the stdlib, numpy, scipy, matplotlib, ``inferperf.record``,
``inferperf.metrics``, ``inferperf.text`` and itself.

- statistics: ``stats`` (bootstrap ratios, Mann-Whitney), ``batch_stats`` (the same in bulk),
  ``abstats`` (two-level block statistics), ``changepoint`` (PELT), ``detection`` (power);
- judging: ``compare`` (+ ``compare_report``), ``ab_verdicts``, ``history`` (+ ``history_index``,
  ``history_site``), ``judged_metric`` (``--metric`` as a transform of loaded runs);
- showing: ``run_report``, ``tables``, ``export``, ``output`` (atomic writes that never touch an
  input), ``select`` (``-k``), ``settings`` (every default, validated).
"""
