"""How to connect: one frozen ``Options`` value, its defaults defined here and nowhere else.

``connect()``, server groups, component specs and the CLI all build one ``Options`` and pass
it whole down to the session and the connection. Keyword overrides go through
``Options.of(base, **overrides)``, which names an unknown option instead of ignoring it.

What can be written down (timeouts, mode, reconnection, prefix, truncation, the lock file and
its policy) round-trips through ``to_config``/``from_config``; what is live code (callbacks for
server requests, a progress listener, a ``LockFile`` object not read from a path) cannot, and
``to_config`` refuses rather than silently dropping it: a reloaded component must not connect
with less protection than the one that was dumped.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, get_args

from mcp.client.session import ElicitationFnT, ListRootsFnT, LoggingFnT, SamplingFnT

from .errors import ConfigError

__all__ = ["DEFAULT_CALL_TIMEOUT", "DEFAULT_MAX_CHARS", "ClientCallbacks", "LockPolicy", "Options",
           "ProgressListener"]

DEFAULT_CALL_TIMEOUT = 180.0
"""Long enough for MultiMail's ``wait_for_email`` (up to 120 s) plus network slack."""

DEFAULT_MAX_CHARS = 100_000
"""Model-facing result text is truncated past this many characters (the full result is kept): large
enough for any sane tool answer, small enough to keep a model's context usable."""

LockPolicy = Literal["warn", "pinned-only", "strict"]
"""What drift from a lock file does: log it; offer only pinned, unchanged tools; refuse the server."""

ProgressListener = Callable[[Any, float, "float | None", "str | None"], Awaitable[None]]
"""``async (call, progress, total, message)``: a server's progress report on one call
(``call`` is the ``bridge.connection.ToolCall`` it belongs to)."""


@dataclass(frozen=True)
class ClientCallbacks:
    """Answers to requests a server may send back: sampling, elicitation, roots, logging.

    Each is the SDK's callback shape; ``bridge.callbacks`` builds them from console prompts or
    plain lists of roots, ``bridge.autogen.sampling_from_model_client`` from an AutoGen model.
    """

    sampling: SamplingFnT | None = None
    elicitation: ElicitationFnT | None = None
    list_roots: ListRootsFnT | None = None
    logging: LoggingFnT | None = None

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self))


# The options measured in seconds, and whether 0 is a meaningful value for each.
_SECONDS = {"timeout": False, "call_timeout": False, "reconnect_backoff": True, "exit_grace": True}

_CARRIED = ("timeout", "call_timeout", "mode", "reconnect_attempts", "reconnect_backoff", "exit_grace", "prefix",
            "max_result_chars", "lock", "lock_policy")


@dataclass(frozen=True)
class Options:
    """Every connection option, with its default.

    Attributes:
        timeout: seconds to start, handshake and list tools.
        call_timeout: default seconds per tool call (a call may pass its own).
        mode: ``"auto"`` negotiates 2026-07-28 or falls back to the initialize handshake;
            ``"legacy"`` forces the handshake; or a pinned modern protocol version.
        reconnect_attempts: re-establish a dead connection up to this many times per request
            (0 disables reconnection).
        reconnect_backoff: seconds before the second attempt, doubling after each.
        exit_grace: seconds a stdio server gets to exit by itself once its stdin is closed, before
            its process group is sent SIGTERM (then SIGKILL 2 s later). On Windows, where the
            SDK's stdio transport serves, the SDK's own 2 s applies instead.
        prefix: prepended (with ``_``) to every agent-facing tool name.
        max_result_chars: model-facing result text is truncated past this.
        lock: a lock file (``mcp-bridge lock``), as a path or a ``bridge.lock.LockFile``; every
            listing is compared with it, at connect time and after each tools/list_changed.
        lock_policy: what drift does (``LockPolicy``).
        callbacks: answers to server-initiated requests (not carried by ``to_config``).
        on_progress: receives progress of every call made without its own ``progress=``,
            agents' calls included (not carried by ``to_config``).
    """

    timeout: float = 30.0
    call_timeout: float = DEFAULT_CALL_TIMEOUT
    mode: str = "auto"
    reconnect_attempts: int = 3
    reconnect_backoff: float = 0.25
    exit_grace: float = 2.0
    prefix: str = ""
    max_result_chars: int = DEFAULT_MAX_CHARS
    lock: str | os.PathLike[str] | Any | None = None
    lock_policy: LockPolicy = "pinned-only"
    callbacks: ClientCallbacks = field(default_factory=ClientCallbacks, compare=False)
    on_progress: ProgressListener | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        for name, may_be_zero in _SECONDS.items():
            value = getattr(self, name)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or value < 0 or (value == 0 and not may_be_zero):
                rule = "0 or more seconds" if may_be_zero else "a positive number of seconds"
                raise ConfigError(f"option {name} must be {rule}, not {value!r}")
        if not isinstance(self.reconnect_attempts, int) or self.reconnect_attempts < 0:
            raise ConfigError(f"option reconnect_attempts must be 0 or more, not {self.reconnect_attempts!r}")
        if not isinstance(self.max_result_chars, int) or self.max_result_chars < 1:
            raise ConfigError(f"option max_result_chars must be a positive integer, not {self.max_result_chars!r}")
        if self.lock_policy not in get_args(LockPolicy):
            raise ConfigError(f"unknown lock policy {self.lock_policy!r}; expected one of "
                              f"{', '.join(get_args(LockPolicy))}")

    @classmethod
    def of(cls, base: Options | None = None, /, **overrides: Any) -> Options:
        """``base`` (default: all defaults) with ``overrides`` applied.

        Raises:
            ConfigError: an override names no option, or a value is out of range.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(f"unknown connection option {', '.join(map(repr, unknown))}; "
                              f"known: {', '.join(sorted(known))}")
        base = base or cls()
        return dataclasses.replace(base, **overrides) if overrides else base

    def to_config(self) -> dict[str, Any]:
        """What differs from the defaults, as JSON.

        Raises:
            ValueError: a live option (callbacks, a progress listener, a ``LockFile`` object)
                cannot be written down.
        """
        if self.callbacks:
            raise ValueError("connection callbacks (sampling, elicitation, roots, logging) cannot be written to a "
                             "config; build the component in code")
        if self.on_progress is not None:
            raise ValueError("an on_progress listener cannot be written to a config; build the component in code")
        if self.lock is not None and not isinstance(self.lock, str | os.PathLike):
            raise ValueError("a LockFile object cannot be written to a config; pass the lock file's path instead")
        defaults = Options()
        out: dict[str, Any] = {}
        for name in _CARRIED:
            value = getattr(self, name)
            if value != getattr(defaults, name):
                out[name] = os.fspath(value) if name == "lock" else value
        return out

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> Options:
        """Inverse of ``to_config``.

        Raises:
            ConfigError: an unknown key or a bad value.
        """
        unknown = sorted(set(data) - set(_CARRIED))
        if unknown:
            raise ConfigError(f"unknown connection option {', '.join(map(repr, unknown))} in the config")
        return cls.of(None, **dict(data))
