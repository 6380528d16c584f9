"""What to connect to: typed targets parsed from a URL, a command or an ``mcpServers`` config.

A target is a small frozen value. It knows nothing about sessions; the transport layer
turns it into streams. Secret values (environment values, headers) are kept out of
``repr`` and are replaced by ``${VAR}`` references in ``to_config``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias
from urllib.parse import urlsplit

from .errors import ConfigError
from .secrets import MASK, env_name, env_secrets, header_secrets, is_secret_name, mask_url, url_secrets

if TYPE_CHECKING:
    import httpx2

__all__ = [
    "HttpTarget",
    "StdioTarget",
    "Target",
    "TransportName",
    "expand_vars",
    "load_config",
    "parse_config",
    "resolve_target",
]

TransportName: TypeAlias = Literal["stdio", "http", "sse"]

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
@dataclass(frozen=True)
class StdioTarget:
    """A server launched as a subprocess speaking MCP over stdin/stdout.

    ``env`` is merged over the minimal environment the SDK gives children (HOME, PATH, ...).
    A bare ``python`` or ``python3`` command, as built by ``resolve_target`` and the config
    parser, is the running interpreter (``sys.executable``): a server started from a virtual
    environment gets that environment's packages, not the system Python's. Any other command,
    an absolute path included, is run as given.
    """

    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    cwd: str | None = None
    name: str = ""

    @property
    def transport(self) -> TransportName:
        return "stdio"

    @property
    def label(self) -> str:
        """A human name: the config name, else the executable's base name."""
        if self.name:
            return self.name
        parts = [Path(self.command).name, *self.args]
        # `python -m pkg` reads better as the module than as "python".
        if "-m" in parts[:-1]:
            return parts[parts.index("-m") + 1]
        return parts[0]

    def describe(self) -> str:
        """The command line, with environment variable names but never their values."""
        env = " ".join(f"{k}=***" for k in sorted(self.env))
        cmd = shlex.join([self.command, *self.args])
        return f"{env} {cmd}".strip()

    def secret_values(self) -> list[str]:
        """Every value that logs, errors and output must hide: the environment's values."""
        return [s for v in self.env.values() for s in env_secrets(v)]

    def to_config(self, secret_refs: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The ``mcpServers`` entry for this target; env values become ``${VAR}`` references."""
        refs = secret_refs or {}
        out: dict[str, Any] = {"command": self.command, "args": list(self.args)}
        if self.env:
            out["env"] = {k: refs.get(k, f"${{{k}}}") for k in self.env}
        if self.cwd:
            out["cwd"] = self.cwd
        return out


@dataclass(frozen=True)
class HttpTarget:
    """A server reached over Streamable HTTP (``transport="http"``) or legacy SSE.

    ``auth`` is an ``httpx2.Auth`` run on every HTTP request, e.g. the SDK's
    ``mcp.client.auth.OAuthClientProvider`` for OAuth 2.1. It is live state (tokens), so it
    is never shown, compared or written to a config.
    """

    url: str = field(repr=False)
    transport: TransportName = "http"
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    name: str = ""
    auth: httpx2.Auth | None = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        return f"HttpTarget(url={self.safe_url()!r}, transport={self.transport!r}, name={self.name!r})"

    @property
    def label(self) -> str:
        """A human name: the config name, else ``host:port/path`` (no scheme, credentials or query)."""
        if self.name:
            return self.name
        parts = urlsplit(self.url)
        return parts.netloc.rpartition("@")[2] + parts.path.rstrip("/") or self.safe_url()

    def safe_url(self, password: str = MASK, secret: str = MASK) -> str:
        """The URL with a userinfo password and secret query values (``api_key=``…) replaced."""
        return mask_url(self.url, password, secret)

    def describe(self) -> str:
        shown = " ".join(f"{k}: {'***' if is_secret_name(k) else v}" for k, v in sorted(self.headers.items()))
        return f"{self.safe_url()} {shown}".strip()

    def secret_values(self) -> list[str]:
        """Every value that logs, errors and output must hide: credential headers, URL secrets."""
        return [s for k, v in self.headers.items() for s in header_secrets(k, v)] + url_secrets(self.url)

    def to_config(self, secret_refs: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The ``mcpServers`` entry; secret header values become ``${VAR}`` references."""
        refs = secret_refs or {}
        url = mask_url(self.url, "${MCP_URL_PASSWORD}", "${{name}}")
        out: dict[str, Any] = {"url": url, "type": "sse" if self.transport == "sse" else "http"}
        if self.headers:
            out["headers"] = {
                k: (refs.get(k, "${" + env_name(k) + "}") if is_secret_name(k) else v)
                for k, v in self.headers.items()
            }
        return out


Target: TypeAlias = StdioTarget | HttpTarget


_BARE_PYTHON = ("python", "python3")


def _command(command: str) -> str:
    # The SDK would look a bare name up on its minimal PATH and find the system Python,
    # which lacks what the venv running us has installed.
    return sys.executable if command in _BARE_PYTHON and sys.executable else command


def resolve_target(
    target: Target | str | Sequence[str],
    *,
    transport: TransportName | None = None,
    env: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    name: str = "",
    auth: httpx2.Auth | None = None,
) -> Target:
    """Turn what a user typed into a target.

    - a ``Target`` passes through (options given here are merged into it);
    - an ``http://``/``https://`` URL is Streamable HTTP, or SSE when ``transport="sse"``
      or the path ends in ``/sse``;
    - a list of strings, or any other string (split like a shell would), is a stdio command;
      a bare ``python``/``python3`` there is ``sys.executable`` (see ``StdioTarget``).

    ``auth`` (an ``httpx2.Auth``) applies to HTTP and SSE targets only.

    Raises:
        ConfigError: empty command, a URL with options that make no sense for it, or an
            unknown transport name.
    """
    if transport not in (None, "stdio", "http", "sse"):
        raise ConfigError(f"unknown transport {transport!r}; use stdio, http or sse")
    if isinstance(target, StdioTarget):
        if auth is not None or headers:
            raise ConfigError("headers= and auth= apply to HTTP and SSE servers only; pass env= for a stdio command")
        merged_env = {**target.env, **(env or {})}
        return StdioTarget(_command(target.command), target.args, merged_env, str(cwd) if cwd else target.cwd,
                           name or target.name)
    if isinstance(target, HttpTarget):
        if env:
            raise ConfigError("env= applies to stdio commands only; pass headers= for an HTTP server")
        return HttpTarget(target.url, transport if transport in ("http", "sse") else target.transport,
                          {**target.headers, **(headers or {})}, name or target.name, auth or target.auth)
    if isinstance(target, str) and re.match(r"^https?://", target, re.IGNORECASE):
        if transport == "stdio":
            raise ConfigError(f"{target!r} is a URL; transport 'stdio' needs a command")
        if env:
            raise ConfigError("env= applies to stdio commands only; pass headers= for an HTTP server")
        parts = urlsplit(target)
        if not parts.hostname:
            raise ConfigError(f"malformed URL {target!r}: no host")
        kind: TransportName = transport or ("sse" if parts.path.rstrip("/").endswith("/sse") else "http")
        return HttpTarget(target, kind, dict(headers or {}), name, auth)
    argv = shlex.split(target) if isinstance(target, str) else [str(a) for a in target]
    if not argv or not argv[0]:
        raise ConfigError("empty server command; give a URL or a command such as 'npx -y @scope/server'")
    if transport in ("http", "sse"):
        raise ConfigError(f"transport {transport!r} needs an http(s) URL, not the command {argv[0]!r}")
    if headers:
        raise ConfigError("headers= applies to HTTP and SSE servers only; pass env= for a stdio command")
    if auth is not None:
        raise ConfigError("auth= applies to HTTP and SSE servers only")
    return StdioTarget(_command(argv[0]), tuple(argv[1:]), dict(env or {}), str(cwd) if cwd else None, name)


def expand_vars(value: str, environ: Mapping[str, str] | None = None, *, where: str = "") -> str:
    """Expand ``${VAR}`` and ``${VAR:-default}`` from the environment.

    Raises:
        ConfigError: a ``${VAR}`` without default names an unset variable.
    """
    source = os.environ if environ is None else environ

    def sub(m: re.Match[str]) -> str:
        var, default = m.group(1), m.group(2)
        if var in source and (source[var] or default is None):
            return source[var]
        if default is not None:
            return default
        place = f" in {where}" if where else ""
        raise ConfigError(f"environment variable {var} is not set{place}; export it or write ${{{var}:-default}}")

    return _VAR.sub(sub, value)


def _expand_tree(node: Any, environ: Mapping[str, str] | None, where: str) -> Any:
    if isinstance(node, str):
        return expand_vars(node, environ, where=where)
    if isinstance(node, list):
        return [_expand_tree(v, environ, where) for v in node]
    if isinstance(node, dict):
        return {k: _expand_tree(v, environ, f"{where}.{k}") for k, v in node.items()}
    return node


def _str_map(entry: Mapping[str, Any], key: str, where: str) -> dict[str, str]:
    raw = entry.get(key) or {}
    if not isinstance(raw, dict) or not all(isinstance(v, str | int | float | bool) for v in raw.values()):
        raise ConfigError(f"{where}.{key} must be an object of strings")
    return {str(k): str(v) for k, v in raw.items()}


def _entry_to_target(name: str, entry: Any, environ: Mapping[str, str] | None, base: Path | None) -> Target:
    where = f"mcpServers.{name}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be an object with 'command' or 'url'")
    entry = _expand_tree(entry, environ, where)
    kind = str(entry.get("type") or entry.get("transport") or "").lower()
    if "url" in entry:
        url = entry["url"]
        if not isinstance(url, str):
            raise ConfigError(f"{where}.url must be a string")
        transport: TransportName | None = None
        if kind in ("sse",):
            transport = "sse"
        elif kind in ("http", "streamable-http", "streamable_http", "streamablehttp"):
            transport = "http"
        elif kind:
            raise ConfigError(f"{where}.type {kind!r} is not one of http, streamable-http, sse")
        if not re.match(r"^https?://", url, re.IGNORECASE):
            raise ConfigError(f"{where}.url must start with http:// or https://")
        return resolve_target(url, transport=transport, headers=_str_map(entry, "headers", where), name=name)
    if "command" in entry:
        command = entry["command"]
        args = entry.get("args") or []
        if not isinstance(command, str) or not command:
            raise ConfigError(f"{where}.command must be a non-empty string")
        if not isinstance(args, list) or not all(isinstance(a, str | int | float) for a in args):
            raise ConfigError(f"{where}.args must be a list of strings")
        if kind and kind != "stdio":
            raise ConfigError(f"{where} has a command, so its type must be 'stdio', not {kind!r}")
        cwd = entry.get("cwd")
        if cwd is not None and not isinstance(cwd, str):
            raise ConfigError(f"{where}.cwd must be a string")
        if cwd and base is not None and not os.path.isabs(cwd):
            cwd = str(base / cwd)
        return StdioTarget(_command(command), tuple(str(a) for a in args), _str_map(entry, "env", where), cwd, name)
    raise ConfigError(f"{where} needs either 'command' (stdio) or 'url' (HTTP/SSE)")


def parse_config(data: Any, *, environ: Mapping[str, str] | None = None, base: Path | None = None,
                 source: str = "config") -> dict[str, Target]:
    """Targets from a parsed ``{"mcpServers": {...}}`` document (Claude Desktop / Cursor / VS Code).

    VS Code's ``{"servers": {...}}`` spelling is accepted too.

    Raises:
        ConfigError: the document is not of that shape; the message names the offending entry.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a JSON object with an 'mcpServers' key")
    servers = data.get("mcpServers", data.get("servers"))
    if not isinstance(servers, dict):
        raise ConfigError(f"{source}: no 'mcpServers' object found")
    if not servers:
        raise ConfigError(f"{source}: 'mcpServers' is empty")
    return {str(name): _entry_to_target(str(name), entry, environ, base) for name, entry in servers.items()}


def load_config(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None) -> dict[str, Target]:
    """Read an ``mcpServers`` JSON file into named targets (``${VAR}`` expanded).

    Raises:
        ConfigError: the file is missing, not JSON, or not an ``mcpServers`` document.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {p}: {e.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{p}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    return parse_config(data, environ=environ, base=p.resolve().parent, source=str(p))
