"""An out-of-memory error during a case becomes a skip with the reason; other errors stay errors."""

import sys

import pytest

from inferperf.cases import Case


class FakeItem:
    def __init__(self, case):
        self.callspec = type("CallSpec", (), {"params": {"case": case}})()


def _run_hook(item, exc):
    hook = sys.modules["conftest"]._out_of_memory_as_skip  # the root conftest, as pytest loaded it
    generator = hook(item)
    next(generator)
    return generator.throw(exc)


def test_out_of_memory_in_a_case_is_a_skip_naming_the_batch():
    with pytest.raises(pytest.skip.Exception, match="out of memory at batch 64 on cuda: CUDA out of memory"):
        _run_hook(FakeItem(Case("batching", "m", "manual", "cuda", batch=64)), RuntimeError("CUDA out of memory. Tried to allocate 2 GiB"))


def test_other_errors_and_non_case_items_are_not_swallowed():
    with pytest.raises(ValueError):
        _run_hook(FakeItem(Case("batching", "m", "manual")), ValueError("shape mismatch"))
    with pytest.raises(MemoryError):
        _run_hook(FakeItem(None), MemoryError())
