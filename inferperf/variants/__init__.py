"""How a model is transformed for deployment: script, quantize, compile, export, ORT, ExecuTorch.

Importing this package imports no framework: ``rungs`` holds what the case lists need (names,
dtypes, devices, extras), importable without torch; ``prepared`` and the transformation modules
(``torchscript``, ``quantize``, ``compiled``, ``onnx``, ``executorch``, ``ladder``) import torch.
"""
