"""The kinds of batch sources the batching technique compares (importable without torch)."""

from typing import Literal

#: one image per forward; the path list sliced by hand; a DataLoader; preprocessing on tensors on the device
SourceKind = Literal["single", "manual", "loader", "tensor_pre"]
