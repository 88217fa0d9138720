"""The record: what inferperf adds to pytest-benchmark's JSON, and how a saved run is read back.

- ``keys``: the key registry — every key of ``machine_info["inferperf"]`` and ``extra_info``, once,
  with its type, unit and meaning (the writer fills keys by these names, the loader checks them,
  ``docs/record.md`` is rendered from them), ``SCHEMA_VERSION`` and ``RecordError``;
- ``run``: the run model (``Run``, ``Benchmark``, ``Summary``);
- ``load``: the one strict loader of run files (every problem one line naming file and field);
- ``validate``: ``inferperf validate``'s check that a run carries every documented key;
- ``fingerprint``: which machine a run was made on (the facts that change every timing);
- ``values``: reading values of any type out of loaded JSON.

Both sides depend on it: the measuring side writes by its keys, every command reads through it.
May import: the stdlib, numpy and ``inferperf.text`` — nothing else of inferperf.
"""
