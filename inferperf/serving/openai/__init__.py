"""The OpenAI-compatible server family: served generation (technique 6b).

- ``servers``: ``OpenAIServerHost``, the session's generation server, one at a time —
  ``transformers serve`` on technique 6's directory (with or without continuous batching) and
  llama-cpp-python's server on a GGUF of the same weights — started, polled until ready, stopped by PID;
- ``client``: the streaming ``/v1/completions`` client on httpx (per-request send, first byte, every
  chunk's arrival and tokens, usage, finish reason, errors) and the load generator's sender.

``--served-url openai+http://host:port/v1`` points the same cases at any such server (vLLM, SGLang, TGI).
"""
