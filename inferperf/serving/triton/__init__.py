"""The KServe-v2 server family (NVIDIA Triton through PyTriton): the zoo's served cases (technique 3).

- ``host``: the host process itself (``python -m inferperf.serving.triton.host --manifest …``):
  loads each model of the manifest and binds it into Triton;
- ``lifecycle``: ``TritonHost``, the session's host — ports, start, readiness, restart when the
  served set changes, statistics, stop by PID;
- ``models``: ``ServedModel``, one manifest entry (SavedModel, timm checkpoint, or a sleeper for
  timeout tests);
- ``client``: Triton's gRPC and HTTP clients for sequential calls, and the load generator's asyncio
  gRPC sender (``triton_load``).
"""
