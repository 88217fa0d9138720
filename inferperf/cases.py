"""The Case: the one place where technique, model, variant and hardware axes meet."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Device = Literal["cpu", "cuda"]
Tier = Literal["quick", "standard"]
DEVICES: tuple[Device, ...] = ("cpu", "cuda")
TIERS: tuple[Tier, ...] = ("quick", "standard")


@dataclass(frozen=True)
class Case:
    """One parametrization of one benchmark.

    The id orders the axes as ``model-device-dtype-variant-bsN`` so that ``-k "cuda and int8"``
    selects naturally; ``case_id`` prefixes the technique and is what comparisons match on.
    """

    technique: str
    model: str
    variant: str
    device: Device = "cpu"
    dtype: str = "fp32"
    batch: int = 1
    backend: str = "torch"
    #: Extras (names in ``inferperf.extras.EXTRAS``) this case cannot run without.
    requires: tuple[str, ...] = ()
    #: text generation: tokens per prompt and new tokens per request (the longest, for mixed-length
    #: batches); part of the id (``-in128-out32``) so lengths select with ``-k`` like any axis
    prompt_len: int | None = None
    output_len: int | None = None

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise ValueError(f"Case.device must be one of {DEVICES}, got {self.device!r}")
        if self.batch < 1:
            raise ValueError(f"Case.batch must be >= 1, got {self.batch}")
        for length in (self.prompt_len, self.output_len):
            if length is not None and length < 1:
                raise ValueError(f"Case prompt_len/output_len must be >= 1, got {length}")
        if (self.prompt_len is None) != (self.output_len is None):
            raise ValueError("Case.prompt_len and Case.output_len are given together or not at all")
        for name in (self.technique, self.model, self.variant, self.dtype, self.backend):
            if not name or "-" in name or "/" in name or " " in name:
                raise ValueError(f"Case field {name!r} must be non-empty, without '-', '/' or spaces")

    @property
    def id(self) -> str:
        lengths = f"-in{self.prompt_len}-out{self.output_len}" if self.prompt_len is not None else ""
        return f"{self.model}-{self.device}-{self.dtype}-{self.variant}-bs{self.batch}{lengths}"

    @property
    def case_id(self) -> str:
        return f"{self.technique}/{self.id}"

    def record(self) -> dict[str, object]:
        """The case's fields as they go into ``extra_info`` (``requires`` is not a result)."""
        fields = asdict(self)
        del fields["requires"]
        if self.prompt_len is None:  # the other techniques' records keep their keys
            del fields["prompt_len"], fields["output_len"]
        fields["case_id"] = self.case_id
        return fields
