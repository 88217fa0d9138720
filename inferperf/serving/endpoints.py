"""Where a served model answers, for each server family, and the one parser of ``--served-url``.

Two families of server: a **KServe-v2** server (Triton; the zoo's served cases) at
``grpc://host:port`` and/or ``http://host:port``, and an **OpenAI-compatible** one (vLLM, SGLang,
TGI, llama.cpp, ``transformers serve``; served generation) at ``openai+http://host:port/v1`` with
``--served-model NAME``. ``parse_served_url`` reads either (``ValueError`` naming the option);
``wrong_family`` is the one-line reason a case of the other family skips under it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Family = Literal["triton", "openai"]
#: what each family's cases are called in a skip reason
FAMILY_CASES: dict[Family, str] = {
    "triton": "the zoo's served cases (technique 3) need a KServe-v2 (Triton) endpoint: grpc://host:port and/or http://host:port",
    "openai": "served generation needs an OpenAI-compatible endpoint: openai+http://host:port/v1 with --served-model NAME",
}

#: how the output length is forced: ``transformers`` (``transformers serve``: a ``generation_config``
#: JSON with ``min_new_tokens``), ``openai`` (vLLM/SGLang's ``min_tokens`` + ``ignore_eos`` and
#: per-chunk usage; dropped after a 4xx answer to them), ``llamacpp`` (llama-cpp-python's server:
#: its default ``repeat_penalty`` of 1.1 would make temperature 0 something other than greedy),
#: ``plain`` (standard fields only)
Dialect = Literal["transformers", "openai", "llamacpp", "plain"]
OPENAI_SCHEME = "openai+"


@dataclass(frozen=True)
class TritonEndpoint:
    """Where a KServe-v2 server answers: ``host:port`` for each protocol it offers."""

    http: str | None
    grpc: str | None
    #: started by this session (False: ``--served-url``, someone else's server)
    owned: bool = True

    def url(self, protocol: str) -> str | None:
        return {"http": self.http, "grpc": self.grpc}[protocol]


@dataclass(frozen=True)
class OpenAIEndpoint:
    """Where an OpenAI-compatible server answers, which model to ask for, and how to force lengths."""

    base_url: str  # http://host:port/v1
    model: str
    dialect: Dialect
    server: str
    owned: bool = True


def family_of(value: str) -> Family:
    """The server family a ``--served-url`` names (by its scheme; not checked further)."""
    return "openai" if value.strip().startswith(OPENAI_SCHEME) else "triton"


def wrong_family(value: str | None, wanted: Family) -> str | None:
    """Why a case that needs a ``wanted`` server cannot run under ``--served-url value`` (None: it can)."""
    if not value or family_of(value) == wanted:
        return None
    return f"--served-url {value.strip()} is {'an OpenAI-compatible' if family_of(value) == 'openai' else 'a KServe-v2 (Triton)'} server; {FAMILY_CASES[wanted]}"


def _triton(value: str) -> TritonEndpoint:
    urls: dict[str, str] = {}
    for part in (p.strip() for p in value.split(",") if p.strip()):
        scheme, sep, address = part.partition("://")
        if not sep or scheme not in ("grpc", "http") or ":" not in address:
            raise ValueError(
                f"--served-url: expected grpc://host:port and/or http://host:port (Triton), or openai+http://host:port/v1, got {part!r}"
            )
        urls[scheme] = address.rstrip("/")
    if not urls:
        raise ValueError("--served-url: no endpoint given")
    return TritonEndpoint(http=urls.get("http"), grpc=urls.get("grpc"), owned=False)


def _openai(value: str, model: str | None) -> OpenAIEndpoint:
    url = value.strip()[len(OPENAI_SCHEME):].rstrip("/")
    scheme, sep, rest = url.partition("://")
    if scheme not in ("http", "https") or not sep or not rest.split("/", 1)[0].strip(":"):
        raise ValueError(f"--served-url: expected openai+http://host:port/v1, got {value!r}")
    if not url.endswith("/v1"):
        url += "/v1"
    if not model:
        raise ValueError("--served-model: an OpenAI-compatible --served-url needs the model name its server serves")
    return OpenAIEndpoint(url, model, "openai", "--served-url", owned=False)


def parse_served_url(value: str, model: str | None = None) -> TritonEndpoint | OpenAIEndpoint:
    """``--served-url`` (and ``--served-model``) -> the endpoint of its family; ValueError names the option."""
    if family_of(value) == "openai":
        return _openai(value, model)
    if model:
        raise ValueError("--served-model: only with an OpenAI-compatible --served-url openai+http://host:port/v1")
    return _triton(value)
