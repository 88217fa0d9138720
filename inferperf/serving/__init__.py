"""Serving: the one load generator, the server families the suite starts or points at, and their clients.

- ``loadgen``: the load generator every served benchmark uses — closed loop, open loop (constant or
  Poisson arrivals on a seeded schedule, an optional in-flight cap), one ``ServedRequest`` record
  per request whatever happens, the client's CPU over the round; a client plugs in as a ``Sender``;
- ``wire``: the receive path of the streaming client — HTTP/1.1 on plain sockets, every read stamped
  by the kernel and in user space, nothing parsed until the round is over;
- ``workers``, ``ray_workers``, ``runners``: a round split across worker processes on one machine,
  or Ray actors over a cluster's nodes (with the clock model), and which of them a case uses;
- ``fidelity`` (+ ``truth_server.c``): the ground-truth stand-in server and the client held against
  its log; ``inferperf client-ceiling``'s ramp;
- ``endpoints``: where a served model answers, per family, and the one parser of ``--served-url``;
- ``process``: a server's lifecycle (free ports on 127.0.0.1, start, bounded readiness poll, stop by
  PID), on the suite's one child-process helper (``inferperf.children``);
- ``triton/``: the KServe-v2 family — the Triton host (PyTriton), its models' manifest, and the
  gRPC/HTTP clients with the load generator's asyncio gRPC sender (the zoo, technique 3);
- ``openai/``: the OpenAI-compatible family — ``transformers serve`` and llama.cpp's server, and
  the streaming httpx client with its sender (served generation, technique 6b).

May import: ``inferperf.metrics`` (the request records the generator fills), ``inferperf.children``,
``inferperf.models`` (the Triton host loads models in its own process), the stdlib and the
serving libraries (imported inside functions, so collection stays light). Never ``inferperf.analysis``.
"""
