"""Metric definitions: plain functions from per-request and per-token records to the record's keys.

- ``distribution``: the one percentile and distribution summary (with distribution-free intervals)
  behind every latency percentile the suite reports;
- ``generation``: text generation's timing of one request (TTFT, TPOT, per-token gaps) and a local
  case's keys;
- ``requests``: what a served round is made of (``ServedRequest``, ``LoadPoint``, ``RoundLoad``);
- ``served``: a served case's keys in two levels — request-level (any request: counts, errors, E2E,
  requests/s) and token-level (a stream: TTFT, TPOT, ITL, tokens/s, goodput against the SLO);
- ``self_check``: whether the client kept the load it was asked for.

The measuring side (fixtures, the load generator) and ``inferperf report`` compute them the same
way. May import: the stdlib, numpy, scipy and ``inferperf.metrics`` itself. No torch, no HTTP.
"""
