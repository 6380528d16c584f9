"""``CodeLimits``: what a program the model writes may spend, and the switch that turns code mode on.

``Guards(code=True)`` (or ``Guards(code=CodeLimits(...))``) offers the model one tool,
``run_python(code)``, instead of the agent's tools: the program runs in a sandbox and reaches the
tools only through the guarded call path (``bridge.code``). These are its limits; the defaults fit
a task of a few dozen tool calls. Plain data, no I/O: the sandbox is loaded on first use only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from .errors import ConfigError

__all__ = ["CodeLimits"]


@dataclass(frozen=True)
class CodeLimits:
    """Limits of one program run in code mode.

    Attributes:
        tool_calls: calls the program may make; the next one stops it.
        cpu_seconds: time the sandbox may spend running Python (not waiting on tools or reviewers).
        wall_seconds: time the whole run may take, tool calls and approvals included (``None``: no limit).
        memory_mb: the sandbox's heap.
        recursion: the deepest call stack.
        output_bytes: printed output kept (the model is shown it truncated like any result).
        type_check: check the program against the tools' stubs before it runs.
    """

    tool_calls: int = 50
    cpu_seconds: float = 10.0
    wall_seconds: float | None = 300.0
    memory_mb: int = 64
    recursion: int = 200
    output_bytes: int = 1_000_000
    type_check: bool = True

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "type_check" or value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ConfigError(f"CodeLimits.{f.name} must be a positive number, not {value!r}")

    def to_config(self) -> dict[str, Any]:
        """The limits that differ from the defaults, JSON-able."""
        default = CodeLimits()
        return {k: v for k, v in asdict(self).items() if v != getattr(default, k)}

    @classmethod
    def from_config(cls, data: Mapping[str, Any] | bool) -> CodeLimits:
        """Inverse of ``to_config`` (``True``: the defaults).

        Raises:
            ConfigError: unknown keys or bad values.
        """
        if data is True:
            return cls()
        if not isinstance(data, Mapping):
            raise ConfigError(f"code must be true or an object of limits, not {data!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown code limits {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**data)
