"""How a model is transformed for deployment: script, quantize, compile, export, ORT, ExecuTorch,
and text generation's variants (caches, compile, torchao configs, batching, speculative decoding).

Importing this package imports no framework: ``rungs`` and ``generation_variants`` hold what the
case lists need (names, dtypes, devices, extras), importable without torch; ``prepared`` and the
transformation modules (``torchscript``, ``quantize``, ``compiled``, ``onnx``, ``executorch``,
``ladder``, ``generation``) import torch. Part of the measuring side: never ``inferperf.analysis``.
"""
