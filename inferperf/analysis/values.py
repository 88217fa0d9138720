"""Reading values out of loaded JSON, where any field may have any type."""

from __future__ import annotations

from typing import Any, Mapping


def as_mapping(value: Any) -> Mapping[str, Any]:
    """``value`` if it is an object, else an empty one."""
    return value if isinstance(value, Mapping) else {}


def as_list(value: Any) -> list[Any]:
    """``value`` if it is a list, else an empty one."""
    return value if isinstance(value, list) else []
