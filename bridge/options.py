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
from typing import Any, Literal, Protocol, get_args

from mcp.client.session import ElicitationFnT, ListRootsFnT, LoggingFnT, SamplingFnT

from .errors import ConfigError
from .secrets import dataclass_repr

__all__ = ["DEFAULT_CALL_TIMEOUT", "DEFAULT_MAX_CHARS", "DEFAULT_MAX_LISTING_BYTES", "DEFAULT_MAX_LISTING_TOOLS",
           "DEFAULT_MAX_MESSAGE_BYTES", "CallbackGuard", "ClientCallbacks", "LockPolicy", "Options", "ProgressListener",
           "byte_size"]

DEFAULT_CALL_TIMEOUT = 180.0
"""Long enough for MultiMail's ``wait_for_email`` (up to 120 s) plus network slack."""

DEFAULT_MAX_CHARS = 100_000
"""Model-facing result text is truncated past this many characters (the full result is kept): large
enough for any sane tool answer, small enough to keep a model's context usable."""

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""The largest single message a stdio server may send: far beyond any tool answer a model can use (results
are cut at ``DEFAULT_MAX_CHARS`` for it) and room for inline media of tens of megabytes, while a line that
never ends stops costing memory here instead of at the timeout."""

DEFAULT_MAX_LISTING_TOOLS = 100_000
"""The most tools one listing may hold: an order of magnitude past the largest real catalogues."""

DEFAULT_MAX_LISTING_BYTES = 256 * 1024 * 1024
"""The most bytes of tools/list answers one listing may read (100,000 tools of 2.5 KB each fit)."""

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


class CallbackGuard(Protocol):
    """Wraps the callbacks that answer one connection's server requests (budgets, approval, audit).

    ``bridge.server_requests.ServerRequestGuard`` is the one the bridge provides.
    """

    def bind(self, server: str, callbacks: ClientCallbacks) -> ClientCallbacks:
        """``callbacks`` guarded for one connection to the server labelled ``server``."""
        ...


# The options measured in seconds, and whether 0 is a meaningful value for each.
_SECONDS = {"timeout": False, "call_timeout": False, "reconnect_backoff": True, "exit_grace": True}

_CARRIED = ("timeout", "call_timeout", "mode", "reconnect_attempts", "reconnect_backoff", "exit_grace", "prefix",
            "max_result_chars", "lock", "lock_policy", "max_message_bytes", "max_listing_tools", "max_listing_bytes",
            "task_tools", "cancel_tasks")

# The options that count something, and must count at least one.
_COUNTS = ("max_result_chars", "max_message_bytes", "max_listing_tools", "max_listing_bytes")


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
        max_message_bytes: the largest message a stdio server may send (default 64 MiB). A longer one
            closes the connection with an error naming this option: a stream cut mid-message cannot be
            resynchronised, so in-flight requests fail at once and the next request reconnects. (Over
            HTTP the SDK reads each body whole; on Windows the SDK's stdio transport has no cap.)
        max_listing_tools: the most tools one listing (every page of ``tools/list``) may hold.
        max_listing_bytes: the most bytes of ``tools/list`` answers one listing may read. Both are
            checked as each page arrives, so a server that pages forever costs bounded memory.
        callbacks: answers to server-initiated requests (not carried by ``to_config``).
        on_progress: receives progress of every call made without its own ``progress=``,
            agents' calls included (not carried by ``to_config``).
        task_tools: tools whose MCP tasks are optional (``execution.taskSupport: "optional"``) that are
            called as tasks, by ``fnmatch`` glob on the MCP name (``("*",)``: every such tool). Tools
            whose tasks are required always run as tasks, and a 2026-07-28 server decides per call.
        cancel_tasks: a call that is cancelled or times out cancels its task on the server
            (``tasks/cancel``); ``False`` leaves it running, to be resumed by its id.
        server_requests: guards the server's sampling and elicitation requests per connection
            (``bridge.ServerRequestGuard``: budget, ``maxTokens`` cap, approval, audit);
            ``connect()`` and ``open_servers()`` use ``ServerRequestGuard()`` when it is ``None``.
            Not carried by ``to_config``: it only acts on callbacks, which are not carried either.
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
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    max_listing_tools: int = DEFAULT_MAX_LISTING_TOOLS
    max_listing_bytes: int = DEFAULT_MAX_LISTING_BYTES
    callbacks: ClientCallbacks = field(default_factory=ClientCallbacks, compare=False)
    on_progress: ProgressListener | None = field(default=None, compare=False)
    server_requests: CallbackGuard | None = field(default=None, compare=False)
    task_tools: tuple[str, ...] = ()
    cancel_tasks: bool = True

    def __repr__(self) -> str:
        # A lock path or a callback's repr may quote a secret a session knows.
        return dataclass_repr(self)

    def __post_init__(self) -> None:
        for name, may_be_zero in _SECONDS.items():
            value = getattr(self, name)
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not number or value < 0 or (value == 0 and not may_be_zero):
                rule = "0 or more seconds" if may_be_zero else "a positive number of seconds"
                raise ConfigError(f"option {name} must be {rule}, not {value!r}")
        if not isinstance(self.reconnect_attempts, int) or self.reconnect_attempts < 0:
            raise ConfigError(f"option reconnect_attempts must be 0 or more, not {self.reconnect_attempts!r}")
        for name in _COUNTS:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"option {name} must be a positive integer, not {value!r}")
        globs = (self.task_tools,) if isinstance(self.task_tools, str) else self.task_tools
        if not isinstance(globs, list | tuple) or not all(isinstance(g, str) and g for g in globs):
            raise ConfigError(f"option task_tools must be a list of tool names or globs, not {self.task_tools!r}")
        object.__setattr__(self, "task_tools", tuple(globs))  # a config's JSON list, kept hashable
        if not isinstance(self.cancel_tasks, bool):
            raise ConfigError(f"option cancel_tasks must be true or false, not {self.cancel_tasks!r}")
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
                out[name] = os.fspath(value) if name == "lock" else list(value) if name == "task_tools" else value
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


def byte_size(count: int) -> str:
    """``count`` bytes for a message: ``"64 MiB"``, ``"1.5 KiB"``, ``"512 bytes"``."""
    if count < 1024:
        return f"{count:,} bytes"
    value = float(count)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:,.1f}".removesuffix(".0") + f" {unit}"
