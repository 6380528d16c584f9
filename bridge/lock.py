"""Pinned catalogues: notice when a server's tools change after they were reviewed.

A "rug pull" is a server changing a tool's description or schema after a human approved
it (a harmless ``get_weather`` later asking for your SSH keys). A lock file records what
every tool looked like when it was reviewed; each fresh listing, at connect time and after
every tools/list_changed, is compared with it and a policy decides what happens.

Lock file format (JSON, UTF-8, keys sorted, one file may pin several servers)::

    {
      "lockVersion": 1,
      "servers": {
        "multimail": {
          "hash": "sha256:…",                  # over the sorted (name, tool hash) pairs
          "tools": {
            "send_email": {
              "hash": "sha256:…",              # over the canonical JSON of "definition"
              "definition": {"name": …, "description": …, "inputSchema": …,
                             "outputSchema": …, "annotations": …}
            }
          }
        }
      }
    }

A definition holds exactly what a model or a policy acts on: name, description,
inputSchema, outputSchema and annotations, as the server sent them (absent fields are
left out). Canonical JSON is ``sort_keys``, no whitespace, UTF-8: the hash is stable across
machines, Python versions and key order.

Policies (``LockPolicy``):

* ``"warn"``: log the drift, use the live catalogue as it is.
* ``"pinned-only"`` (default): only tools pinned *and unchanged* are offered; new and
  changed tools are withheld (calling one raises ``CatalogueDrift`` saying why).
* ``"strict"``: any drift (new, removed or changed tool) refuses the whole server:
  connecting or re-listing raises ``CatalogueDrift``.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import mcp_types as types

from .errors import CatalogueDrift, ConfigError
from .options import LockPolicy

__all__ = [
    "DEFAULT_LOCK_FILE",
    "Drift",
    "LockFile",
    "LockGuard",
    "LockPolicy",
    "ServerPin",
    "ToolChange",
    "compare",
    "definition",
    "tool_hash",
]

logger = logging.getLogger("bridge.lock")

DEFAULT_LOCK_FILE = "mcp-tools.lock"
LOCK_VERSION = 1
_POLICIES: tuple[str, ...] = get_args(LockPolicy)
_FIELDS = ("name", "description", "inputSchema", "outputSchema", "annotations")


def definition(tool: types.Tool) -> dict[str, Any]:
    """The pinned part of a tool, as wire JSON: name, description, schemas, annotations."""
    wire = tool.model_dump(by_alias=True, mode="json", exclude_none=True)
    return {k: wire[k] for k in _FIELDS if k in wire}


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def tool_hash(defn: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of a definition's canonical JSON."""
    return "sha256:" + hashlib.sha256(_canonical(defn)).hexdigest()


def _catalogue_hash(hashes: Mapping[str, str]) -> str:
    return "sha256:" + hashlib.sha256(_canonical(sorted(hashes.items()))).hexdigest()


def _first_of_each(tools: Iterable[types.Tool]) -> dict[str, types.Tool]:
    # Mirrors Catalogue: with duplicate names the first listing is the one in use.
    unique: dict[str, types.Tool] = {}
    for tool in tools:
        unique.setdefault(tool.name, tool)
    return unique


@dataclass(frozen=True)
class ServerPin:
    """One server's pinned tools: name -> definition."""

    tools: Mapping[str, Mapping[str, Any]]

    @classmethod
    def of(cls, tools: Iterable[types.Tool]) -> ServerPin:
        return cls({name: definition(tool) for name, tool in sorted(_first_of_each(tools).items())})

    @property
    def hash(self) -> str:
        return _catalogue_hash({name: tool_hash(d) for name, d in self.tools.items()})

    def to_json(self) -> dict[str, Any]:
        return {"hash": self.hash,
                "tools": {name: {"hash": tool_hash(d), "definition": d} for name, d in sorted(self.tools.items())}}

    @classmethod
    def from_json(cls, data: Any, *, where: str) -> ServerPin:
        """Raises: ConfigError: the entry is malformed or a tool's hash does not match its definition."""
        if not isinstance(data, Mapping) or not isinstance(data.get("tools"), Mapping):
            raise ConfigError(f"{where}: expected an object with a 'tools' object")
        tools: dict[str, Mapping[str, Any]] = {}
        for name, entry in data["tools"].items():
            if not isinstance(entry, Mapping) or not isinstance(entry.get("definition"), Mapping):
                raise ConfigError(f"{where}: tool {name!r} has no 'definition' object")
            defn = entry["definition"]
            # A hand-edited definition with a stale hash would pin something nobody reviewed.
            if entry.get("hash") not in (None, tool_hash(defn)):
                raise ConfigError(f"{where}: tool {name!r}: hash does not match its definition "
                                  "(edited by hand? re-run 'mcp-bridge lock')")
            tools[str(name)] = defn
        return cls(tools)


@dataclass
class LockFile:
    """A lock file's content: pins per server name."""

    servers: dict[str, ServerPin] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> LockFile:
        """Read a lock file.

        Raises:
            ConfigError: missing, unreadable, not JSON, an unknown ``lockVersion``, or malformed.
        """
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"lock file {os.fspath(path)!r} not found; create it with 'mcp-bridge lock'") from None
        except (OSError, ValueError) as e:
            raise ConfigError(f"lock file {os.fspath(path)!r} is unreadable: {e}") from None
        if not isinstance(data, Mapping) or data.get("lockVersion") != LOCK_VERSION:
            raise ConfigError(f"lock file {os.fspath(path)!r}: expected \"lockVersion\": {LOCK_VERSION}")
        servers = data.get("servers")
        if not isinstance(servers, Mapping):
            raise ConfigError(f"lock file {os.fspath(path)!r}: expected a 'servers' object")
        return cls({str(name): ServerPin.from_json(entry, where=f"lock file {os.fspath(path)!r}, server {name!r}")
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
class Drift:
    """How a live catalogue differs from its pins."""

    server: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    changed: tuple[ToolChange, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

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
        return "; ".join(parts) if parts else "no drift"

    def report(self) -> str:
        """A readable multi-line report with a JSON diff per changed tool."""
        if not self:
            return f"server {self.server!r}: the catalogue matches the lock file"
        lines = [f"server {self.server!r}: the catalogue differs from the lock file"]
        lines += [f"  + new tool {name!r}" for name in self.added]
        lines += [f"  - removed tool {name!r}" for name in self.removed]
        for change in self.changed:
            lines.append(f"  ~ changed tool {change.name!r} ({', '.join(change.fields)}):")
            lines += ["      " + line for line in change.diff.splitlines()]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"server": self.server, "added": list(self.added), "removed": list(self.removed),
                "changed": [{"name": c.name, "fields": list(c.fields), "diff": c.diff} for c in self.changed]}


def _pretty(value: Any) -> list[str]:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).splitlines()


def compare(pin: ServerPin, tools: Iterable[types.Tool], *, server: str = "") -> Drift:
    """How ``tools`` (a live listing) differ from ``pin``."""
    live = {name: definition(tool) for name, tool in _first_of_each(tools).items()}
    changed = []
    for name in sorted(set(live) & set(pin.tools)):
        old, new = pin.tools[name], live[name]
        if tool_hash(old) == tool_hash(new):
            continue
        fields = tuple(k for k in _FIELDS if old.get(k) != new.get(k))
        diff = "\n".join(difflib.unified_diff(_pretty(old), _pretty(new), "locked", "live", lineterm="", n=2))
        changed.append(ToolChange(name, fields, diff))
    return Drift(server=server, added=tuple(sorted(set(live) - set(pin.tools))),
                 removed=tuple(sorted(set(pin.tools) - set(live))), changed=tuple(changed))


class LockGuard:
    """Vets every fresh listing against a lock file; a ``Connection`` guard.

    Call it with a server name and the listed tools; it returns the tools to offer and
    the withheld ones with the reason. ``last_drift`` keeps the latest comparison.

    Args:
        lock: a ``LockFile`` or the path of one (read once, here).
        policy: ``"warn"``, ``"pinned-only"`` or ``"strict"`` (see the module docstring).

    Raises:
        ConfigError: an unknown policy, or an unreadable lock file.
    """

    def __init__(self, lock: LockFile | str | os.PathLike[str], policy: LockPolicy = "pinned-only") -> None:
        if policy not in _POLICIES:
            raise ConfigError(f"unknown lock policy {policy!r}; expected one of {', '.join(_POLICIES)}")
        self.lock = lock if isinstance(lock, LockFile) else LockFile.load(lock)
        self.policy = policy
        self.last_drift: Drift | None = None

    def __call__(self, server: str, tools: Sequence[types.Tool]) -> tuple[list[types.Tool], dict[str, str]]:
        """Returns ``(tools to offer, {withheld name: reason})``.

        Raises:
            CatalogueDrift: under ``"strict"``, when anything drifted.
            ConfigError: the lock file does not pin this server.
        """
        drift = compare(self.lock.pin(server), tools, server=server)
        seen, self.last_drift = self.last_drift, drift
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
