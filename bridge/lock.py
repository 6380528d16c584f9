"""Pinned catalogues: notice when what a server shows the model changes after it was reviewed.

A "rug pull" is a server changing a tool after a human approved it (a harmless ``get_weather``
later asking for your SSH keys), in its description, its schema, its title, or in the
server's ``instructions`` that users put in the system message. A lock file records what the
server showed when it was reviewed; each fresh listing, at connect time and after every
tools/list_changed or reconnect, is compared with it and a policy decides what happens.

Lock file format (JSON, UTF-8, keys sorted, one file may pin several servers)::

    {
      "lockVersion": 2,
      "servers": {
        "multimail": {
          "pins": ["_meta", "annotations", ..., "instructions", ...],   # what this entry covers
          "hash": "sha256:…",                  # over the sorted (name, tool hash) pairs
          "instructions": {"hash": "sha256:…", "text": "…"},   # text null: the server gave none
          "tools": {
            "send_email": {
              "hash": "sha256:…",              # over the canonical JSON of "definition"
              "definition": {"name": …, "title": …, "description": …, "inputSchema": …, …}
            }
          }
        }
      }
    }

A definition holds the whole tool as the server listed it (``TOOL_FIELDS``; absent fields are
left out, so a pin without a ``title`` says the tool had none, and a title appearing later is
drift): every field reaches a model (name, title, description, inputSchema: the title *is* the
model-facing description of a tool without one), the search index of a deferred catalogue
(name, title, description, argument descriptions), a policy (annotations, execution) or the
reviewer reading ``mcp-bridge tools``/``show`` (all of them, icons and ``_meta`` included).
Canonical JSON is ``sort_keys``, no whitespace, UTF-8: the hash is stable across machines,
Python versions and key order.

Lock files of version 1 pinned only name, description, inputSchema, outputSchema and
annotations, and no instructions. They keep working: what an entry does not cover is reported
as "not pinned yet" (``Drift.unpinned``, logged and printed by ``mcp-bridge verify``), never as
drift, and ``mcp-bridge lock`` run again pins it.

Policies (``LockPolicy``):

* ``"warn"``: log the drift, use the live catalogue and instructions as they are.
* ``"pinned-only"`` (default): only tools pinned *and unchanged* are offered; new and
  changed tools are withheld (calling one raises ``CatalogueDrift`` saying why); changed
  instructions are withheld too (``Connection.instructions`` is ``None``, with the reason).
* ``"strict"``: any drift (new, removed or changed tool, changed instructions) refuses the
  whole server: connecting or re-listing raises ``CatalogueDrift``.
"""

from __future__ import annotations

import difflib
import enum
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, get_args

import mcp_types as types

from .errors import CatalogueDrift, ConfigError
from .options import LockPolicy
from .sanitize import one_line, visible

__all__ = [
    "DEFAULT_LOCK_FILE",
    "INSTRUCTIONS",
    "LOCK_VERSION",
    "TOOL_FIELDS",
    "Drift",
    "LockFile",
    "LockGuard",
    "LockPolicy",
    "ServerPin",
    "TextChange",
    "ToolChange",
    "compare",
    "definition",
    "tool_hash",
]

logger = logging.getLogger("bridge.lock")

DEFAULT_LOCK_FILE = "mcp-tools.lock"
LOCK_VERSION = 2
_POLICIES: tuple[str, ...] = get_args(LockPolicy)

TOOL_FIELDS: Final = ("name", "title", "description", "inputSchema", "outputSchema", "annotations", "execution",
                      "icons", "_meta")
"""Every field of an MCP tool, in report order: all of it is pinned."""

INSTRUCTIONS: Final = "instructions"
"""The server-level pin: the handshake's ``instructions``."""

_EVERYTHING: Final = frozenset((*TOOL_FIELDS, INSTRUCTIONS))
# What a version 1 lock file pinned; anything else is "not pinned yet" for its entries.
_VERSION_1: Final = frozenset(("name", "description", "inputSchema", "outputSchema", "annotations"))


def definition(tool: types.Tool, fields: Iterable[str] = TOOL_FIELDS) -> dict[str, Any]:
    """The pinned part of a tool, as wire JSON: ``fields`` (default: all) that the tool has."""
    wire = tool.model_dump(by_alias=True, mode="json", exclude_none=True)
    return {k: wire[k] for k in TOOL_FIELDS if k in fields and k in wire}


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def tool_hash(defn: Any) -> str:
    """``sha256:<hex>`` of a definition's (or any pinned value's) canonical JSON."""
    return "sha256:" + hashlib.sha256(_canonical(defn)).hexdigest()


def _catalogue_hash(hashes: Mapping[str, str]) -> str:
    return "sha256:" + hashlib.sha256(_canonical(sorted(hashes.items()))).hexdigest()


def _first_of_each(tools: Iterable[types.Tool]) -> dict[str, types.Tool]:
    # Mirrors Catalogue: with duplicate names the first listing is the one in use.
    unique: dict[str, types.Tool] = {}
    for tool in tools:
        unique.setdefault(tool.name, tool)
    return unique


def _instructions(text: str | None) -> str | None:
    # An empty string tells the model nothing, like an absent field: one spelling for "none".
    return text or None


@dataclass(frozen=True)
class ServerPin:
    """One server's pins: tool name -> definition, the server's instructions, and what they cover.

    ``covers`` names the tool fields (``TOOL_FIELDS``) and server-level pins (``INSTRUCTIONS``)
    this entry holds; an entry from an older lock file covers less, and what it does not cover is
    "not pinned yet" rather than drift. ``instructions`` is ``None`` when the server gave none.
    """

    tools: Mapping[str, Mapping[str, Any]]
    instructions: str | None = None
    covers: frozenset[str] = _EVERYTHING

    @classmethod
    def of(cls, tools: Iterable[types.Tool], instructions: str | None = None) -> ServerPin:
        """Pin a live listing and the handshake's instructions, every field of them."""
        return cls({name: definition(tool) for name, tool in sorted(_first_of_each(tools).items())},
                   _instructions(instructions))

    @property
    def hash(self) -> str:
        """The catalogue hash: over the sorted (tool name, tool hash) pairs."""
        return _catalogue_hash({name: tool_hash(d) for name, d in self.tools.items()})

    @property
    def fields(self) -> tuple[str, ...]:
        """The tool fields this entry pins, in ``TOOL_FIELDS`` order."""
        return tuple(f for f in TOOL_FIELDS if f in self.covers)

    @property
    def pins_instructions(self) -> bool:
        return INSTRUCTIONS in self.covers

    @property
    def unpinned(self) -> tuple[str, ...]:
        """What this entry does not cover yet (older lock file), in report order."""
        return tuple(f for f in (*TOOL_FIELDS, INSTRUCTIONS) if f not in self.covers)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "pins": sorted(self.covers), "hash": self.hash,
            "tools": {name: {"hash": tool_hash(d), "definition": d} for name, d in sorted(self.tools.items())}}
        if self.pins_instructions:
            out["instructions"] = {"hash": tool_hash(self.instructions), "text": self.instructions}
        return out

    @classmethod
    def from_json(cls, data: Any, *, where: str, version: int = LOCK_VERSION) -> ServerPin:
        """Read one server's entry of a lock file of ``version``.

        Raises:
            ConfigError: the entry is malformed, or a hash does not match what it covers.
        """
        if not isinstance(data, Mapping) or not isinstance(data.get("tools"), Mapping):
            raise ConfigError(f"{where}: expected an object with a 'tools' object")
        covers = _VERSION_1 if version == 1 else _covers(data.get("pins"), where)
        tools: dict[str, Mapping[str, Any]] = {}
        for name, entry in data["tools"].items():
            if not isinstance(entry, Mapping) or not isinstance(entry.get("definition"), Mapping):
                raise ConfigError(f"{where}: tool {name!r} has no 'definition' object")
            defn = entry["definition"]
            # A hand-edited definition with a stale hash would pin something nobody reviewed.
            _check_hash(entry, defn, f"{where}: tool {name!r}")
            tools[str(name)] = defn
        return cls(tools, _instructions_entry(data, covers, where), covers)


def _covers(value: Any, where: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: expected a 'pins' list naming what the entry pins; re-run 'mcp-bridge lock'")
    unknown = sorted(set(value) - _EVERYTHING)
    if unknown or "name" not in value:
        what = f"unknown pins {', '.join(map(repr, unknown))}" if unknown else "'pins' must include 'name'"
        raise ConfigError(f"{where}: {what}; re-run 'mcp-bridge lock'")
    return frozenset(value)


def _check_hash(entry: Mapping[str, Any], value: Any, where: str) -> None:
    if entry.get("hash") not in (None, tool_hash(value)):
        raise ConfigError(f"{where}: hash does not match what it pins (edited by hand? re-run 'mcp-bridge lock')")


def _instructions_entry(data: Mapping[str, Any], covers: frozenset[str], where: str) -> str | None:
    if INSTRUCTIONS not in covers:
        return None
    entry = data.get(INSTRUCTIONS)
    if not isinstance(entry, Mapping) or not isinstance(entry.get("text"), str | None):
        raise ConfigError(f"{where}: expected an 'instructions' object with a 'text' string or null")
    _check_hash(entry, entry.get("text"), f"{where}: instructions")
    return _instructions(entry.get("text"))


@dataclass
class LockFile:
    """A lock file's content: pins per server name."""

    servers: dict[str, ServerPin] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LockFile:
        """Read a lock file (this version or an older one).

        Raises:
            ConfigError: missing, unreadable, not JSON, an unknown ``lockVersion``, or malformed.
        """
        where = f"lock file {os.fspath(path)!r}"
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"{where} not found; create it with 'mcp-bridge lock'") from None
        except (OSError, ValueError) as e:
            raise ConfigError(f"{where} is unreadable: {e}") from None
        version = data.get("lockVersion") if isinstance(data, Mapping) else None
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= LOCK_VERSION:
            raise ConfigError(f"{where}: expected \"lockVersion\": 1 to {LOCK_VERSION} (a newer lock file needs a "
                              "newer mcp-bridge)")
        servers = data.get("servers")
        if not isinstance(servers, Mapping):
            raise ConfigError(f"{where}: expected a 'servers' object")
        return cls({str(name): ServerPin.from_json(entry, where=f"{where}, server {name!r}", version=version)
                    for name, entry in servers.items()})

    def to_json(self) -> dict[str, Any]:
        return {"lockVersion": LOCK_VERSION,
                "servers": {name: pin.to_json() for name, pin in sorted(self.servers.items())}}

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically (a crash never leaves half a lock file)."""
        target = Path(path)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(self.dumps(), encoding="utf-8")
        os.replace(tmp, target)

    def pin(self, server: str) -> ServerPin:
        """The pins for ``server``; a file pinning a single server answers for any name.

        Raises:
            ConfigError: the file pins other servers only.
        """
        if server in self.servers:
            return self.servers[server]
        if len(self.servers) == 1:
            return next(iter(self.servers.values()))
        known = ", ".join(sorted(self.servers)) or "none"
        raise ConfigError(f"the lock file has no entry for server {server!r} (it pins: {known}); "
                          f"run 'mcp-bridge lock {server}'")


@dataclass(frozen=True)
class ToolChange:
    """A tool whose definition differs from its pin; ``diff`` is a unified diff of the JSON."""

    name: str
    fields: tuple[str, ...]
    diff: str


@dataclass(frozen=True)
class TextChange:
    """Pinned text (the server's instructions) that differs from the live text; ``diff`` is unified."""

    locked: str | None
    live: str | None
    diff: str


class _NotGiven(enum.Enum):
    NOT_GIVEN = enum.auto()


NOT_GIVEN: Final = _NotGiven.NOT_GIVEN
"""``compare(instructions=...)`` default: the live instructions are not known, so not compared."""


@dataclass(frozen=True)
class Drift:
    """How a live catalogue (and the server's instructions) differ from the pins.

    ``unpinned`` maps what the pins do not cover yet (an older lock file) to what carries a
    value for it now: tool names (for instructions: "the server gives some"). It is not drift.
    """

    server: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[ToolChange, ...] = ()
    instructions: TextChange | None = None
    unpinned: Mapping[str, tuple[str, ...]] = field(default_factory=dict, hash=False)

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed or self.instructions)

    @property
    def summary(self) -> str:
        """One line: what changed, by name."""
        parts = []
        if self.added:
            parts.append(f"new: {', '.join(self.added)}")
        if self.removed:
            parts.append(f"removed: {', '.join(self.removed)}")
        if self.changed:
            parts.append("changed: " + ", ".join(f"{c.name} ({', '.join(c.fields)})" for c in self.changed))
        if self.instructions:
            parts.append("the server's instructions changed")
        # Tool names are the server's text too, and this line ends up in errors and logs.
        return one_line("; ".join(parts)) if parts else "no drift"

    def unpinned_report(self) -> str:
        """One line naming what the lock file does not pin yet (empty when it pins everything)."""
        if not self.unpinned:
            return ""
        shown = [f"{what} ({', '.join(carriers)})" for what, carriers in self.unpinned.items() if carriers]
        unused = [what for what, carriers in self.unpinned.items() if not carriers]
        if unused:
            shown.append(f"{', '.join(unused)} (nothing sets {'it' if len(unused) == 1 else 'them'} now)")
        return one_line(f"server {self.server!r}: not pinned yet (an older lock file): {'; '.join(shown)}; "
                        "re-run 'mcp-bridge lock' to pin them")

    def report(self) -> str:
        """A readable multi-line report with a diff per changed tool and for changed instructions.

        The server's text in it is shown with its controls and invisible characters as escapes
        (``bridge.sanitize``): the report goes to logs and terminals, where it must read as written.
        """
        return visible(self._report())

    def _report(self) -> str:
        if not self:
            return f"server {self.server!r}: the catalogue matches the lock file"
        lines = [f"server {self.server!r}: the catalogue differs from the lock file"]
        lines += [f"  + new tool {name!r}" for name in self.added]
        lines += [f"  - removed tool {name!r}" for name in self.removed]
        for change in self.changed:
            lines.append(f"  ~ changed tool {change.name!r} ({', '.join(change.fields)}):")
            lines += ["      " + line for line in change.diff.splitlines()]
        if self.instructions:
            lines.append("  ~ changed instructions (the server's text for the model's system message):")
            lines += ["      " + line for line in self.instructions.diff.splitlines()]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        changed = self.instructions
        return {"server": self.server, "added": list(self.added), "removed": list(self.removed),
                "changed": [{"name": c.name, "fields": list(c.fields), "diff": c.diff} for c in self.changed],
                "instructions": {"locked": changed.locked, "live": changed.live, "diff": changed.diff}
                if changed else None,
                "notPinnedYet": {what: list(carriers) for what, carriers in self.unpinned.items()}}


def _pretty(value: Any) -> list[str]:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).splitlines()


def _diff(old: list[str], new: list[str]) -> str:
    return "\n".join(difflib.unified_diff(old, new, "locked", "live", lineterm="", n=2))


def _lines(text: str | None) -> list[str]:
    return ["(none)"] if text is None else text.splitlines() or [""]


def compare(pin: ServerPin, tools: Iterable[types.Tool], *, instructions: str | _NotGiven | None = NOT_GIVEN,
            server: str = "") -> Drift:
    """How ``tools`` (a live listing) and ``instructions`` (the live handshake's) differ from ``pin``.

    Only what the pin covers is compared; what it does not cover yet is listed in ``unpinned``.
    """
    unique = _first_of_each(tools)
    live = {name: definition(tool, pin.covers) for name, tool in unique.items()}
    changed = []
    for name in sorted(set(live) & set(pin.tools)):
        old, new = pin.tools[name], live[name]
        if tool_hash(old) == tool_hash(new):
            continue
        fields = tuple(k for k in pin.fields if old.get(k) != new.get(k))
        changed.append(ToolChange(name, fields, _diff(_pretty(old), _pretty(new))))
    text_change = None
    if instructions is not NOT_GIVEN and pin.pins_instructions and _instructions(instructions) != pin.instructions:
        now = _instructions(instructions)
        text_change = TextChange(pin.instructions, now, _diff(_lines(pin.instructions), _lines(now)))
    return Drift(server=server, added=tuple(sorted(set(live) - set(pin.tools))),
                 removed=tuple(sorted(set(pin.tools) - set(live))), changed=tuple(changed),
                 instructions=text_change, unpinned=_unpinned(pin, unique, instructions))


def _unpinned(pin: ServerPin, tools: Mapping[str, types.Tool],
              instructions: str | _NotGiven | None) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    wires = {name: definition(tool) for name, tool in sorted(tools.items())} if pin.unpinned else {}
    for what in pin.unpinned:
        if what == INSTRUCTIONS:
            given = isinstance(instructions, str) and bool(instructions)
            out[what] = ("the server gives some",) if given else ()
        else:
            out[what] = tuple(name for name, wire in wires.items() if what in wire)
    return out


class LockGuard:
    """Vets every fresh listing, and the server's instructions, against a lock file; a ``Connection`` guard.

    Call it with a server name and the listed tools; it returns the tools to offer and
    the withheld ones with the reason. ``last_drift`` keeps the latest comparison.
    ``vet_instructions`` says which instructions may be handed out.

    Args:
        lock: a ``LockFile`` or the path of one (read once, here).
        policy: ``"warn"``, ``"pinned-only"`` or ``"strict"`` (see the module docstring).
        instructions: reads the live handshake's instructions, compared on every listing (a
            reconnect, which may bring new ones, is always followed by one).

    Raises:
        ConfigError: an unknown policy, or an unreadable lock file.
    """

    def __init__(self, lock: LockFile | str | os.PathLike[str], policy: LockPolicy = "pinned-only", *,
                 instructions: Callable[[], str | None] | None = None) -> None:
        if policy not in _POLICIES:
            raise ConfigError(f"unknown lock policy {policy!r}; expected one of {', '.join(_POLICIES)}")
        self.lock = lock if isinstance(lock, LockFile) else LockFile.load(lock)
        self.policy = policy
        self.last_drift: Drift | None = None
        self._instructions = instructions

    def __call__(self, server: str, tools: Sequence[types.Tool]) -> tuple[list[types.Tool], dict[str, str]]:
        """Returns ``(tools to offer, {withheld name: reason})``.

        Raises:
            CatalogueDrift: under ``"strict"``, when anything drifted (the instructions included).
            ConfigError: the lock file does not pin this server.
        """
        live = self._instructions() if self._instructions is not None else NOT_GIVEN
        drift = compare(self.lock.pin(server), tools, instructions=live, server=server)
        seen, self.last_drift = self.last_drift, drift
        if drift.unpinned and (seen is None or seen.unpinned != drift.unpinned):
            logger.warning("%s", drift.unpinned_report())
        if not drift:
            return list(tools), {}
        if self.policy == "strict":
            raise CatalogueDrift(f"the tool catalogue differs from the lock file ({drift.summary}); "
                                 "refusing the server", server=server, drift=drift)
        if drift != seen:  # a re-listing that finds the same drift has nothing new to say
            logger.warning("%s", drift.report())
        if self.policy == "warn":
            return list(tools), {}
        withheld = {name: "by the lock file: it is not in the lock file" for name in drift.added}
        withheld.update({c.name: f"by the lock file: its {', '.join(c.fields)} changed since it was locked"
                         for c in drift.changed})
        return [t for t in tools if t.name not in withheld], withheld

    def vet_instructions(self, server: str, live: str | None) -> tuple[str | None, str | None]:
        """``(instructions to hand out, why they are withheld)`` for the live handshake's ``live``.

        Unchanged (or not pinned yet, or under ``"warn"``): the live text and no reason. Changed under
        ``"pinned-only"`` or ``"strict"``: nothing, and the reason; the unreviewed text is never handed out.

        Raises:
            ConfigError: the lock file does not pin this server.
        """
        pin = self.lock.pin(server)
        if self.policy == "warn" or not pin.pins_instructions or _instructions(live) == pin.instructions:
            return live, None
        return None, "by the lock file: the server's instructions changed since they were locked"

