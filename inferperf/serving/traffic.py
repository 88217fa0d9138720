"""``--traffic``: what served requests say — prompts in the served model's own tokens, their lengths,
shared prefixes, multi-turn sessions, datasets and traces the user has.

A spec is ``KIND[:FILE][:KEY=VALUE...]``::

    random:in=512:out=128                       fixed lengths (the tiers' default traffic)
    random:in=normal(512,128,64,1024):out=uniform(32,256)
                                                lengths drawn per request: normal(mean, sd, min, max),
                                                uniform(min, max), or fixed
    random:in=128:out=64:prefixes=4:prefix_len=512
                                                4 shared prefixes of 512 tokens ahead of the prompts
                                                (request i carries prefix i mod 4): prefix caching's traffic
    multiturn:turns=4:in=64:out=32:think=0.5    sessions of 4 turns; each turn's prompt is the whole
                                                history plus 64 new tokens; 0.5 s between an answer and
                                                the next turn (with --load sessions:N)
    jsonl:FILE                                  one request a line: {"prompt": ..., "output_len": N}
                                                or {"input_len": N, "output_len": M}
    sharegpt:FILE[:max_out=512]                 ShareGPT conversations (JSON list or JSONL): the first
                                                human turn, answered with the first gpt turn's length;
                                                with --load sessions:N every turn, as a session
    trace:FILE[:block=512]                      a Mooncake trace (JSONL: timestamp ms, input_length,
                                                output_length, hash_ids): with --load trace, each request at its time;
                                                equal hash ids are equal blocks of ``block`` tokens

Prompts are windows of real prose (``inferperf.models.textgen.prose``) cut in the tokens of the
tokenizer given (``--tokenizer DIR``, a local directory, never a download), re-encoded to check
the length (a window whose text re-encodes to another length is moved, and what remains off is
recorded). A multi-turn history holds the recorded answer (the dataset's reply, or the synthetic
one of the answer's length) rather than the served one: every run sends the same bytes, and the
server's prefix cache sees the same shared history it would in production.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from inferperf.serving.openai.client import CompletionRequest

KINDS = ("random", "multiturn", "jsonl", "sharegpt", "trace")
_WITH_FILE = ("jsonl", "sharegpt", "trace")
#: Mooncake's traces hash blocks of this many tokens
MOONCAKE_BLOCK_TOKENS = 512
_KEYS = {"in", "out", "prefixes", "prefix_len", "turns", "think", "max_out", "block", "seed", "sessions"}


class TrafficError(ValueError):
    """Traffic that cannot be built: the message names the option, or the file and line."""


# ----------------------------------------------------------------------------------------------
# Lengths


@dataclass(frozen=True)
class Lengths:
    """A length distribution: ``fixed`` (a), ``normal`` (mean a, sd b, within [lo, hi]) or ``uniform`` (lo..hi)."""

    kind: str
    a: float
    b: float = 0.0
    lo: int = 1
    hi: int = 1 << 20

    def draw(self, rng: random.Random) -> int:
        if self.kind == "fixed":
            return int(self.a)
        if self.kind == "uniform":
            return rng.randint(self.lo, self.hi)
        return int(min(self.hi, max(self.lo, round(rng.gauss(self.a, self.b)))))


_DIST = re.compile(r"^(normal|uniform)\(([^)]*)\)$")


def parse_lengths(text: str, what: str) -> Lengths:
    """``512``, ``normal(512,128,64,1024)`` or ``uniform(32,256)``; raises TrafficError naming ``what``."""
    try:
        if text.isdigit() and int(text) > 0:
            return Lengths("fixed", int(text))
        match = _DIST.match(text.replace(" ", ""))
        if match:
            args = [float(a) for a in match.group(2).split(",")]
            if match.group(1) == "uniform" and len(args) == 2 and 0 < args[0] <= args[1]:
                return Lengths("uniform", 0, 0, int(args[0]), int(args[1]))
            if match.group(1) == "normal" and len(args) == 4 and args[1] >= 0 and 0 < args[2] <= args[3]:
                return Lengths("normal", args[0], args[1], int(args[2]), int(args[3]))
    except ValueError:
        pass
    raise TrafficError(f"--traffic {what}={text!r}: expected a positive whole number, normal(mean,sd,min,max) or uniform(min,max)")


# ----------------------------------------------------------------------------------------------
# The spec


@dataclass(frozen=True)
class TrafficSpec:
    kind: str
    path: Path | None = None
    options: dict[str, str] = field(default_factory=dict)
    text: str = ""

    def lengths(self, key: str, default: int) -> Lengths:
        return parse_lengths(self.options[key], key) if key in self.options else Lengths("fixed", default)

    def integer(self, key: str, default: int) -> int:
        value = self.options.get(key)
        if value is None:
            return default
        if not value.isdigit():
            raise TrafficError(f"--traffic {self.text!r}: {key}= expects a whole number, got {value!r}")
        return int(value)

    def seconds(self, key: str, default: float) -> float:
        try:
            value = float(self.options.get(key, default))
        except ValueError:
            raise TrafficError(f"--traffic {self.text!r}: {key}= expects seconds, got {self.options[key]!r}") from None
        if value < 0:
            raise TrafficError(f"--traffic {self.text!r}: {key}= must not be negative")
        return value


def parse_traffic(text: str) -> TrafficSpec:
    """``--traffic``'s spec; raises TrafficError with one line naming what is wrong (a missing file too)."""
    fields = [f.strip() for f in text.strip().split(":")]
    kind, rest = fields[0], fields[1:]
    if kind not in KINDS:
        raise TrafficError(f"--traffic {text!r}: unknown kind {kind!r}; one of {', '.join(KINDS)}")
    path = None
    if kind in _WITH_FILE:
        if not rest or "=" in rest[0]:
            raise TrafficError(f"--traffic {text!r}: {kind} needs a file ({kind}:FILE)")
        path = Path(rest.pop(0)).expanduser()
        if not path.is_file():
            raise TrafficError(f"--traffic {text!r}: {path}: no such file")
    options: dict[str, str] = {}
    for part in rest:
        key, sep, value = part.partition("=")
        if not sep or key not in _KEYS or not value:
            raise TrafficError(f"--traffic {text!r}: {part!r} is not KEY=VALUE with a key among {', '.join(sorted(_KEYS))}")
        options[key] = value
    spec = TrafficSpec(kind, path, options, text)
    for key in ("in", "out"):  # fail at the command line, not in a case
        if key in options:
            parse_lengths(options[key], key)
    return spec


# ----------------------------------------------------------------------------------------------
# Prompts of exact lengths in the tokenizer's tokens


@dataclass
class PromptMaker:
    """Cuts prose windows of an exact token count in ``tokenizer``'s tokens (re-encoding to check)."""

    tokenizer: Any
    seed: int = 0
    corpus: list[int] = field(default_factory=list)
    #: windows whose text re-encoded to another length after every try (their real length is recorded)
    inexact: int = 0

    def __post_init__(self) -> None:
        from inferperf.models.textgen import prose_ids

        self.corpus = prose_ids(self.tokenizer)
        self.rng = random.Random(self.seed)

    def count(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def text(self, length: int) -> str:
        """Prose of ``length`` tokens (repeated past the corpus's end for very long prompts)."""
        if length <= 0:
            return ""
        ids = self.corpus * (length // max(1, len(self.corpus)) + 2)
        best = ""
        for _ in range(8):
            start = self.rng.randrange(0, max(1, len(self.corpus)))
            text = str(self.tokenizer.decode(ids[start: start + length]))
            if self.count(text) == length:
                return text
            best = best or text
        self.inexact += 1
        return best


# ----------------------------------------------------------------------------------------------
# Building the requests


def _lines(path: Path) -> Iterator[tuple[int, Any]]:
    """A JSONL file's objects with their line numbers, or a JSON list's items; one line per error."""
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except ValueError as exc:
            raise TrafficError(f"{path}: not valid JSON ({exc})") from None
        yield from enumerate(items, 1)
        return
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise TrafficError(f"{path}:{number}: not a JSON object ({exc.msg})") from None


def _positive_int(value: Any, path: Path, number: int, key: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise TrafficError(f"{path}:{number}: {key} must be a positive whole number, got {value!r}")
    return value


def _request(maker: PromptMaker, prompt: str, output: int, **more: Any) -> CompletionRequest:
    return CompletionRequest(prompt, output, maker.count(prompt), **more)


def _random(spec: TrafficSpec, maker: PromptMaker, count: int, prompt_len: int, output_len: int) -> list[CompletionRequest]:
    rng = random.Random(spec.integer("seed", 0))
    ins, outs = spec.lengths("in", prompt_len), spec.lengths("out", output_len)
    prefixes = [maker.text(spec.integer("prefix_len", 256)) for _ in range(spec.integer("prefixes", 0))]
    requests = []
    for i in range(count):
        prefix = prefixes[i % len(prefixes)] if prefixes else ""
        requests.append(_request(maker, prefix + maker.text(ins.draw(rng)), outs.draw(rng), prefix_group=i % len(prefixes) if prefixes else None))
    return requests


def _multiturn(spec: TrafficSpec, maker: PromptMaker, count: int, prompt_len: int, output_len: int) -> list[CompletionRequest]:
    rng = random.Random(spec.integer("seed", 0))
    turns, think = spec.integer("turns", 4), spec.seconds("think", 0.0)
    ins, outs = spec.lengths("in", prompt_len), spec.lengths("out", output_len)
    sessions = spec.integer("sessions", max(1, -(-count // turns)))
    conversations = [[(maker.text(ins.draw(rng)), outs.draw(rng)) for _ in range(turns)] for _ in range(sessions)]
    # the recorded answer of a synthetic session: prose of the answer's length
    return _sessions(maker, [[(user, out, maker.text(out)) for user, out in conv] for conv in conversations], think)


def _sessions(maker: PromptMaker, conversations: Sequence[Sequence[tuple[str, int, str]]], think_s: float) -> list[CompletionRequest]:
    """Each conversation's turns as requests: turn k's prompt is every earlier turn and answer, then its own."""
    requests = []
    for session, turns in enumerate(conversations):
        history: list[dict[str, str]] = []
        for turn, (user, output, answer) in enumerate(turns):
            history.append({"role": "user", "content": user})
            prompt = "\n".join(m["content"] for m in history)
            requests.append(_request(maker, prompt, output, messages=list(history), session=session, turn=turn, think_s=think_s))
            history.append({"role": "assistant", "content": answer})
    return requests


def _jsonl(spec: TrafficSpec, maker: PromptMaker, count: int) -> list[CompletionRequest]:
    assert spec.path is not None
    requests = []
    for number, item in _lines(spec.path):
        if not isinstance(item, dict):
            raise TrafficError(f"{spec.path}:{number}: expected an object with prompt or input_len, and output_len")
        output = _positive_int(item.get("output_len"), spec.path, number, "output_len")
        if isinstance(item.get("prompt"), str):
            requests.append(_request(maker, item["prompt"], output))
        else:
            requests.append(_request(maker, maker.text(_positive_int(item.get("input_len"), spec.path, number, "input_len")), output))
    return requests


def _sharegpt(spec: TrafficSpec, maker: PromptMaker, sessions: bool) -> list[CompletionRequest]:
    assert spec.path is not None
    max_out = spec.integer("max_out", 512)
    conversations = []
    for number, item in _lines(spec.path):
        turns = item.get("conversations") if isinstance(item, dict) else None
        if not isinstance(turns, list) or not all(isinstance(t, dict) and isinstance(t.get("value"), str) for t in turns):
            raise TrafficError(f"{spec.path}:{number}: expected {{\"conversations\": [{{\"from\": ..., \"value\": ...}}, ...]}}")
        pairs = []
        for ask, answer in zip(turns[0::2], turns[1::2]):
            if ask.get("from") != "human" or answer.get("from") != "gpt":
                raise TrafficError(f"{spec.path}:{number}: turns must alternate human, gpt (found {ask.get('from')!r}, {answer.get('from')!r})")
            pairs.append((ask["value"], max(1, min(max_out, maker.count(answer["value"]))), answer["value"]))
        if pairs:
            conversations.append(pairs if sessions else pairs[:1])
    return _sessions(maker, conversations, spec.seconds("think", 0.0))


def _trace(spec: TrafficSpec, maker: PromptMaker) -> list[CompletionRequest]:
    """A Mooncake trace: each line's time (ms), lengths and hash ids; equal ids are equal token blocks."""
    assert spec.path is not None
    block = spec.integer("block", MOONCAKE_BLOCK_TOKENS)
    blocks: dict[int, str] = {}
    requests: list[CompletionRequest] = []
    first: float | None = None
    last = float("-inf")
    for number, item in _lines(spec.path):
        if not isinstance(item, dict) or not isinstance(item.get("timestamp"), (int, float)):
            raise TrafficError(f"{spec.path}:{number}: expected an object with timestamp (ms), input_length, output_length")
        stamp = float(item["timestamp"])
        if stamp < last:
            raise TrafficError(f"{spec.path}:{number}: timestamp {stamp:g} goes back (the line before: {last:g})")
        last = stamp
        first = stamp if first is None else first
        length = _positive_int(item.get("input_length"), spec.path, number, "input_length")
        output = _positive_int(item.get("output_length"), spec.path, number, "output_length")
        hashes = item.get("hash_ids") or []
        if not isinstance(hashes, list) or not all(isinstance(h, int) for h in hashes):
            raise TrafficError(f"{spec.path}:{number}: hash_ids must be a list of whole numbers")
        parts = []
        for i, hash_id in enumerate(hashes):
            if (i + 1) * block > length:
                break  # the last, partial block is the request's own
            parts.append(blocks.setdefault(hash_id, maker.text(block)))
        own = length - block * len(parts)
        requests.append(_request(maker, "".join(parts) + maker.text(own), output, arrival_s=(stamp - first) / 1000.0,
                                 prefix_group=hashes[0] if parts else None))
    if not requests:
        raise TrafficError(f"{spec.path}: no requests in the trace")
    return requests


def build_requests(spec: TrafficSpec, tokenizer: Any, count: int, prompt_len: int, output_len: int, *,
                   sessions: bool = False, seed: int = 0) -> list[CompletionRequest]:
    """At least ``count`` requests of ``spec`` (files give what they hold, repeated to ``count``;
    a trace gives its own requests, in order) in ``tokenizer``'s tokens."""
    maker = PromptMaker(tokenizer, seed)
    made: list[CompletionRequest]
    if spec.kind == "random":
        made = _random(spec, maker, count, prompt_len, output_len)
    elif spec.kind == "multiturn":
        made = _multiturn(spec, maker, count, prompt_len, output_len)
    elif spec.kind == "jsonl":
        made = _jsonl(spec, maker, count)
    elif spec.kind == "sharegpt":
        made = _sharegpt(spec, maker, sessions)
    else:
        return _trace(spec, maker)
    if not made:
        raise TrafficError(f"--traffic {spec.text!r}: no requests in {spec.path}")
    if spec.kind in ("jsonl", "sharegpt") and len(made) < count:  # a small file: its requests again, in order
        made = [made[i % len(made)] for i in range(count)]
    return made


def describe(spec: TrafficSpec, requests: Sequence[CompletionRequest], tokenizer_source: str) -> dict[str, object]:
    """What the record says of the traffic: its spec, whose tokens, and the lengths it sent."""
    import numpy as np

    prompts = np.array([r.prompt_tokens or 0 for r in requests], dtype=float)
    outputs = np.array([r.max_tokens for r in requests], dtype=float)
    info: dict[str, object] = {
        "spec": spec.text or spec.kind, "kind": spec.kind, "tokenizer": tokenizer_source, "requests": len(requests),
        "prompt_tokens_mean": float(prompts.mean()) if len(prompts) else None,
        "prompt_tokens_max": int(prompts.max()) if len(prompts) else None,
        "output_tokens_mean": float(outputs.mean()) if len(outputs) else None,
    }
    groups = {r.prefix_group for r in requests if r.prefix_group is not None}
    if groups:
        info["shared_prefix_groups"] = len(groups)
    turns = [r.turn for r in requests if r.turn is not None]
    if turns:
        info["sessions"] = len({r.session for r in requests if r.session is not None})
        info["turns_max"] = max(turns) + 1
    return info


def load_tokenizer(directory: Path) -> Any:
    """A local tokenizer (``--tokenizer DIR``): never a download; one line when it does not load."""
    if not directory.is_dir():
        raise TrafficError(f"--tokenizer {directory}: no such directory")
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(directory), local_files_only=True)
    except Exception as exc:  # any loader failure is the directory's: say so in one line
        raise TrafficError(f"--tokenizer {directory}: does not load as a tokenizer ({type(exc).__name__}: {str(exc).splitlines()[0][:160]})") from None

