"""Which optional extras are installed, checked without importing them (collection stays fast)."""

from __future__ import annotations

import importlib.util
from functools import cache

#: extra name -> modules that must be importable for it.
EXTRAS: dict[str, tuple[str, ...]] = {
    "torch": ("torch", "torchvision", "transformers", "timm", "skimage", "PIL"),
    "tf": ("tensorflow",),
    "dali": ("nvidia.dali",),
    "serve": ("pytriton", "tritonclient"),
    # served generation: transformers serve (transformers[serving]) and the streaming client
    "genserve": ("fastapi", "uvicorn", "openai", "httpx"),
    # a second generation engine: llama.cpp's server on a GGUF (a source build: its own extra)
    "llamacpp": ("llama_cpp", "gguf", "sse_starlette", "starlette_context"),
    "onnx": ("onnx", "onnxruntime", "onnxscript"),
    "torchao": ("torchao",),
    "executorch": ("executorch",),
}

#: extras that are installed by another extra's name in pyproject.toml.
_INSTALLED_BY = {"onnx": "torch", "torchao": "torch", "genserve": "serve"}


def _module_present(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


@cache
def missing_modules(extra: str) -> tuple[str, ...]:
    if extra not in EXTRAS:
        raise KeyError(f"unknown extra {extra!r}; known: {sorted(EXTRAS)}")
    return tuple(m for m in EXTRAS[extra] if not _module_present(m))


def has_extra(extra: str) -> bool:
    return not missing_modules(extra)


def missing_reason(extra: str) -> str:
    """An actionable skip reason, e.g. "install the [dali] extra: pip install -e '.[dali]' (missing nvidia.dali)"."""
    target = _INSTALLED_BY.get(extra, extra)
    missing = ", ".join(missing_modules(extra))
    return f"install the [{target}] extra: pip install -e '.[{target}]' (missing {missing})"
