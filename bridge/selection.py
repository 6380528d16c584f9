"""Which of a server's tools an agent gets: ``ToolFilter``, a pure predicate over catalogue entries.

A filter is applied when a tool set is built *and* again on every call through a workbench,
so a tool that is not selected cannot be reached by calling it under another name.

Patterns are shell-style globs (``fnmatchcase``: ``*``, ``?``, ``[ab]``) matched against both
the tool's MCP name and its agent-facing safe name (which carries the server prefix in a
group), so ``send_email`` and ``mail_send_email`` both name MultiMail's send tool.

Annotations are hints the *server* makes about its own tools. ``read_only=True`` is a
convenient way to hand a triage agent every reader, but a server that lies can smuggle a
writer past it: for servers you do not trust, name the tools (``include=[...]``).

``opt_in`` holds tools that are never selected by a pattern, only when ``include`` names them
exactly (``bridge.multimail.ACCOUNT_TOOLS`` is such a list)::

    ToolFilter(opt_in=ACCOUNT_TOOLS)                                 # everything but those
    ToolFilter(include=["*", "create_api_key"], opt_in=ACCOUNT_TOOLS)  # plus one, by name
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any

from .catalogue import ToolEntry
from .errors import ConfigError

__all__ = ["ToolFilter"]

def _as_patterns(value: str | Iterable[str] | None, what: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    patterns = (value,) if isinstance(value, str) else tuple(value)
    for p in patterns:
        if not isinstance(p, str) or not p:
            raise ConfigError(f"{what} patterns must be non-empty strings, got {p!r}")
    return patterns


@dataclass(frozen=True)
class ToolFilter:
    """Selects tools by name pattern, annotation and predicate. Exclusion always wins.

    Args:
        include: globs; a tool must match one (MCP or safe name). ``None`` selects every tool.
        exclude: globs; a matching tool is never selected.
        read_only: ``True`` keeps only tools annotated read-only, ``False`` only the others
            (a tool without annotations counts as not read-only).
        destructive: ``True``/``False`` keeps only tools that are / are not effectively
            destructive (missing annotations count as destructive, as the spec says).
        opt_in: globs for tools selected only when ``include`` lists their exact name.
        servers: globs on the server name (useful for a group of servers).
        predicate: any further test on the entry (not serialisable into component configs).

    Raises:
        ConfigError: a pattern is empty or not a string.
    """

    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    read_only: bool | None = None
    destructive: bool | None = None
    opt_in: tuple[str, ...] = ()
    servers: tuple[str, ...] | None = None
    predicate: Callable[[ToolEntry], bool] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        # Accept any iterable (and a lone string) but store tuples, so filters stay hashable.
        object.__setattr__(self, "include", _as_patterns(self.include, "include"))
        object.__setattr__(self, "exclude", _as_patterns(self.exclude, "exclude") or ())
        object.__setattr__(self, "opt_in", _as_patterns(self.opt_in, "opt_in") or ())
        object.__setattr__(self, "servers", _as_patterns(self.servers, "servers"))

    @classmethod
    def of(cls, include: str | Iterable[str] | None = None, exclude: str | Iterable[str] | None = None,
           read_only: bool | None = None, *, base: ToolFilter | None = None) -> ToolFilter:
        """Merge keyword shorthands into ``base``: patterns are combined, explicit flags override.

        Raises:
            ConfigError: a pattern is empty or not a string.
        """
        base = base or cls()
        inc = _as_patterns(include, "include")
        if inc is not None and base.include is not None:
            inc = base.include + inc
        return cls(
            include=inc if inc is not None else base.include,
            exclude=base.exclude + (_as_patterns(exclude, "exclude") or ()),
            read_only=read_only if read_only is not None else base.read_only,
            destructive=base.destructive,
            opt_in=base.opt_in,
            servers=base.servers,
            predicate=base.predicate,
        )

    def selects(self, entry: ToolEntry, server: str | None = None) -> bool:
        """Whether ``entry`` (listed by ``server``) belongs to the selection."""
        names = (entry.mcp_name, entry.name)
        if self.servers is not None and (server is None or not _matches(self.servers, (server,))):
            return False
        if _matches(self.exclude, names):
            return False
        if self.include is not None and not _matches(self.include, names):
            return False
        # "Named" means literally listed, so a wildcard can never hand these out.
        if self.opt_in and _matches(self.opt_in, names) and not set(self.include or ()) & set(names):
            return False
        a = entry.annotations
        if self.read_only is not None and a.effective_read_only != self.read_only:
            return False
        if self.destructive is not None and a.effective_destructive != self.destructive:
            return False
        return self.predicate is None or bool(self.predicate(entry))

    def apply(self, entries: Iterable[ToolEntry], server: str | None = None) -> list[ToolEntry]:
        """The selected entries, in catalogue order."""
        return [e for e in entries if self.selects(e, server)]

    def to_config(self) -> dict[str, Any]:
        """A JSON-able form for component configs.

        Raises:
            ValueError: the filter has a ``predicate``, which cannot be written down.
        """
        if self.predicate is not None:
            raise ValueError("a ToolFilter with a predicate cannot be serialised; use patterns or annotations")
        out: dict[str, Any] = {}
        if self.include is not None:
            out["include"] = list(self.include)
        for key in ("exclude", "opt_in"):
            if getattr(self, key):
                out[key] = list(getattr(self, key))
        if self.servers is not None:
            out["servers"] = list(self.servers)
        for key in ("read_only", "destructive"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out

    @classmethod
    def from_config(cls, data: Mapping[str, Any]) -> ToolFilter:
        """Inverse of ``to_config``.

        Raises:
            ConfigError: unknown keys or malformed patterns.
        """
        known = {"include", "exclude", "opt_in", "servers", "read_only", "destructive"}
        unknown = set(data) - known
        if unknown:
            raise ConfigError(f"unknown tool filter keys: {', '.join(sorted(unknown))}")
        def patterns(key: str) -> tuple[str, ...] | None:
            value = data.get(key)
            return None if value is None else tuple(value)

        return cls(include=patterns("include"), exclude=patterns("exclude") or (), opt_in=patterns("opt_in") or (),
                   servers=patterns("servers"), read_only=data.get("read_only"), destructive=data.get("destructive"))


def _matches(patterns: Sequence[str], names: Sequence[str]) -> bool:
    return any(fnmatchcase(n, p) for p in patterns for n in names)
