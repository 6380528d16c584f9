"""What to connect to: typed targets parsed from a URL, a command or an ``mcpServers`` config.

A target is a small frozen value. It knows nothing about sessions; the transport layer
turns it into streams. Secret values (environment values, credential headers, URL passwords
and every value a config's ``${VAR}`` expanded to, wherever it went: ``args``, the URL's path,
a header) are kept out of ``repr`` and ``describe`` and are written as ``${VAR}`` references by
``to_config``, so a dumped config never holds one and reloads with the same values.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
import shlex
import sys
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias
from urllib.parse import parse_qsl, urlsplit

from .errors import ConfigError
from .secrets import (
    MASK,
    env_name,
    env_secrets,
    header_secrets,
    is_secret_header,
    mask_known,
    mask_url,
    url_secrets,
)

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
    "read_config",
    "resolve_target",
]

TransportName: TypeAlias = Literal["stdio", "http", "sse"]

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _referenced(text: str, refs: Mapping[str, str]) -> str:
    """``text`` with each secret value of ``refs`` (value -> ``${VAR}``) replaced by its reference."""
    if not refs or not text:
        return text
    pattern = re.compile("|".join(re.escape(v) for v in sorted(refs, key=len, reverse=True)))
    return pattern.sub(lambda m: refs[m.group(0)], text)


def _expansions(expanded: Mapping[str, str]) -> list[str]:
    return [v for v, ref in expanded.items() if _expansion_secret(v, ref)]


def _expansion_secret(value: str, ref: str) -> bool:
    """Whether what ``ref`` (``${VAR}`` or ``${VAR:-default}``) expanded to is a secret."""
    name = _REF_NAME.match(ref)
    return bool(env_secrets(value, name.group(1) if name else None))


_REF_NAME = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")

# Commands that run a package named by their first plain argument (after the sub-command, if any):
# the package tells two such servers apart, the launcher does not.
_LAUNCHERS = {"npx": (), "bunx": (), "pnpx": (), "uvx": (), "pipx": ("run",), "pnpm": ("dlx",), "yarn": ("dlx",),
              "uv": ("tool", "run")}
# Their options that take a value, which is not the package.
_VALUED = frozenset({"--python", "--with", "--index", "--index-url", "--extra-index-url", "--registry", "--cache",
                     "--node-options", "--spec"})
_VERSION = re.compile(r"^(@?[^@=<>~!\s]+)")


def _launched_package(parts: Sequence[str]) -> str | None:
    """The package a launcher command runs, without its version (``@scope/server@1.2`` -> ``@scope/server``)."""
    launcher = parts[0].removesuffix(".cmd").removesuffix(".exe")
    if launcher not in _LAUNCHERS:
        return None
    sub = _LAUNCHERS[launcher]
    rest = list(parts[1:])
    if tuple(rest[:len(sub)]) != sub:
        return None
    rest = rest[len(sub):]
    skip = False
    for arg in rest:
        if skip:
            skip = False
        elif arg in _VALUED:
            skip = True
        elif not arg.startswith("-"):
            found = _VERSION.match(arg)
            return found.group(1) if found else arg
    return None


# Interpreters whose first plain argument is the script they run (``python -m`` is read apart).
_INTERPRETERS = re.compile(r"^(node|nodejs|bun|python(\d+(\.\d+)?)?)$")
# `docker run` / `podman run` options that take a value (the image is the first plain argument after them).
_DOCKER_VALUED = frozenset({"-e", "--env", "--env-file", "-v", "--volume", "--mount", "-p", "--publish", "--name",
                            "--network", "--net", "-w", "--workdir", "--entrypoint", "-u", "--user", "-l", "--label",
                            "--platform", "--pull", "-m", "--memory", "--cpus", "--add-host", "--hostname", "-h",
                            "--log-driver", "--restart", "--cap-add", "--cap-drop", "--security-opt", "--tmpfs",
                            "--device", "--gpus", "--ipc", "--pid", "--shm-size", "--ulimit", "--dns"})


# Interpreter options: code given inline (no script to name), and options that take a value.
_INLINE = frozenset({"-c", "-e", "--eval", "-p", "--print"})
_INTERPRETER_VALUED = frozenset({"-W", "-X", "-r", "--require", "--import", "--loader"})


def _first_plain(args: Sequence[str], valued: frozenset[str] = frozenset()) -> str | None:
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in _INLINE and valued is _INTERPRETER_VALUED:
            return None
        elif arg in valued:
            skip = True
        elif not arg.startswith("-"):
            return arg
    return None


def _run_target(parts: Sequence[str]) -> str | None:
    """What an interpreter or a container launcher runs: the script (the npm package it belongs to,
    when it lies in ``node_modules``), or ``docker run``'s image without its tag."""
    launcher = parts[0].removesuffix(".exe")
    if launcher in ("docker", "podman") and parts[1:2] == ["run"]:
        image = _first_plain(parts[2:], _DOCKER_VALUED)
        return re.sub(r"(@sha256)?:[^/:]+$", "", image) if image else None
    if not _INTERPRETERS.match(launcher):
        return None
    script = _first_plain(parts[1:], _INTERPRETER_VALUED)
    if script is None:
        return None
    path = script.replace("\\", "/").split("/")
    if "node_modules" in path:
        after = path[len(path) - path[::-1].index("node_modules"):]
        return "/".join(after[:2]) if after[:1] and after[0].startswith("@") else (after[0] if after else None)
    return script if not Path(script).is_absolute() else Path(script).name


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
    expanded: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    """Values a config's ``${VAR}`` expanded to, each with its reference (set by ``parse_config``)."""

    def __post_init__(self) -> None:
        # A bare launcher or interpreter reads its stdin, our JSON-RPC, as its own input: npx hands
        # it to the shell ("sh: 1: {jsonrpc...}: not found") and the start-up times out. Said at once.
        parts = [Path(self.command).name, *self.args]
        launcher = parts[0].removesuffix(".cmd").removesuffix(".exe")
        sub = _LAUNCHERS.get(launcher)
        if sub is not None and tuple(parts[1:1 + len(sub)]) == sub and _launched_package(parts) is None:
            example = {"uvx": "uvx mcp-server-git", "pipx": "pipx run mcp-server-git"}.get(
                launcher, f"{shlex.join(parts[:1 + len(sub)])} -y @modelcontextprotocol/server-everything"
                if launcher in ("npx", "bunx", "pnpx") else f"{shlex.join(parts[:1 + len(sub)])} PACKAGE")
            raise ConfigError(f"{self._who()}{shlex.join(parts)!r} names no package to run; add it, e.g. {example!r}")
        if _INTERPRETERS.match(launcher) and not self.args:
            example = "node build/index.js" if launcher.startswith(("node", "bun")) else "python -m package"
            raise ConfigError(f"{self._who()}{parts[0]!r} alone names no script to run; add the server's, e.g. "
                              f"{example!r}")

    def _who(self) -> str:
        return f"server {self.name!r}: " if self.name else ""

    def __repr__(self) -> str:
        args = tuple(_referenced(a, self._refs()) for a in self.args)
        cwd = _referenced(self.cwd, self.expanded) if self.cwd else self.cwd
        return mask_known(f"StdioTarget(command={_referenced(self.command, self.expanded)!r}, args={args!r}, "
                          f"cwd={cwd!r}, name={self.name!r})")

    @property
    def transport(self) -> TransportName:
        return "stdio"

    def _refs(self) -> dict[str, str]:
        """Every secret value with the reference a config writes for it (an expansion's own first)."""
        refs = {s: f"${{{k}}}" for k, v in self.env.items() for s in env_secrets(v, k)}
        refs.update({v: ref for v, ref in self.expanded.items() if _expansion_secret(v, ref)})
        return refs

    @property
    def label(self) -> str:
        """The user's name for the server: the config name, else taken from the command (the
        module of ``python -m``, the package ``npx``/``uvx``/``pipx run``... runs, the script
        ``node``/``python`` runs (or its npm package), ``docker run``'s image, else the
        executable's base name). Never what the server says about itself."""
        if self.name:
            return self.name
        parts = [Path(self.command).name, *self.args]
        # `python -m pkg` reads better as the module than as "python".
        if "-m" in parts[:-1]:
            return parts[parts.index("-m") + 1]
        return _launched_package(parts) or _run_target(parts) or parts[0]

    def describe(self) -> str:
        """The command line, with environment variable names but never their values."""
        env = " ".join(f"{k}=***" for k in sorted(self.env))
        refs = self._refs()
        cmd = shlex.join([_referenced(self.command, self.expanded), *(_referenced(a, refs) for a in self.args)])
        return f"{env} {cmd}".strip()

    def secret_values(self) -> list[str]:
        """Every value that logs, errors and output must hide: the environment's values and what
        a config's ``${VAR}`` expanded to."""
        return [s for k, v in self.env.items() for s in env_secrets(v, k)] + _expansions(self.expanded)

    def to_config(self, secret_refs: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The ``mcpServers`` entry for this target; env values become ``${VAR}`` references, and so
        does every secret value in ``args`` (an expansion's value its own reference)."""
        refs = secret_refs or {}
        values = self._refs()
        out: dict[str, Any] = {"command": _referenced(self.command, self.expanded),
                               "args": [_referenced(a, values) for a in self.args]}
        if self.env:
            out["env"] = {k: refs.get(k, f"${{{k}}}") for k in self.env}
        if self.cwd:
            out["cwd"] = _referenced(self.cwd, self.expanded)
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
    expanded: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    """Values a config's ``${VAR}`` expanded to, each with its reference (set by ``parse_config``)."""

    def __repr__(self) -> str:
        return mask_known(f"HttpTarget(url={self.safe_url()!r}, transport={self.transport!r}, name={self.name!r})")

    @property
    def label(self) -> str:
        """A human name: the config name, else ``host:port/path`` (no scheme, credentials or query)."""
        if self.name:
            return self.name
        parts = urlsplit(self.url)
        return parts.netloc.rpartition("@")[2] + parts.path.rstrip("/") or self.safe_url()

    def safe_url(self, password: str = MASK, secret: str = MASK) -> str:
        """The URL with a userinfo password and secret query values (``api_key=``…) replaced, and
        what a config's ``${VAR}`` expanded to (in the path, say) shown as its reference."""
        return mask_url(_referenced(self.url, self.expanded), password, secret)

    def describe(self) -> str:
        refs = self._refs()
        shown = " ".join(f"{k}: {'***' if is_secret_header(k) else _referenced(v, refs)}"
                         for k, v in sorted(self.headers.items()))
        return f"{self.safe_url()} {shown}".strip()

    def _refs(self) -> dict[str, str]:
        """Secret header values with the reference a config writes for them (an expansion's own first)."""
        refs = {s: "${" + env_name(k) + "}" for k, v in self.headers.items() for s in header_secrets(k, v)}
        refs.update({v: ref for v, ref in self.expanded.items() if _expansion_secret(v, ref)})
        return refs

    def secret_values(self) -> list[str]:
        """Every value that logs, errors and output must hide: credential headers, URL secrets,
        and what a config's ``${VAR}`` expanded to."""
        return ([s for k, v in self.headers.items() for s in header_secrets(k, v)] + url_secrets(self.url)
                + _expansions(self.expanded))

    def to_config(self, secret_refs: Mapping[str, str] | None = None) -> dict[str, Any]:
        """The ``mcpServers`` entry; secret header values, URL secrets and expanded values become
        ``${VAR}`` references (an expansion keeps its own)."""
        refs = secret_refs or {}
        url = _referenced(self.url, self.expanded)
        parts = urlsplit(url)
        password = parts.password if parts.password and _VAR.fullmatch(parts.password) else "${MCP_URL_PASSWORD}"
        query = dict(parse_qsl(parts.query))

        def query_ref(key: str) -> str:
            given = query.get(key, "")
            return given if _VAR.fullmatch(given) else "${" + env_name(key) + "}"

        out: dict[str, Any] = {"url": mask_url(url, password, query_ref),
                               "type": "sse" if self.transport == "sse" else "http"}
        if self.headers:
            values = self._refs()
            out["headers"] = {
                k: (refs.get(k, self.expanded.get(v, "${" + env_name(k) + "}")) if is_secret_header(k)
                    else _referenced(v, values))
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
                           name or target.name, target.expanded)
    if isinstance(target, HttpTarget):
        if env:
            raise ConfigError("env= applies to stdio commands only; pass headers= for an HTTP server")
        return HttpTarget(target.url, transport if transport in ("http", "sse") else target.transport,
                          {**target.headers, **(headers or {})}, name or target.name, auth or target.auth,
                          target.expanded)
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


def expand_vars(value: str, environ: Mapping[str, str] | None = None, *, where: str = "",
                expanded: dict[str, str] | None = None) -> str:
    """Expand ``${VAR}`` and ``${VAR:-default}`` from the environment.

    ``expanded``, when given, receives each value put in with the reference it came from
    (value -> ``${VAR}``): what a target treats as secret and writes back as that reference.

    Raises:
        ConfigError: a ``${VAR}`` without default names an unset variable.
    """
    source = os.environ if environ is None else environ

    def sub(m: re.Match[str]) -> str:
        var, default = m.group(1), m.group(2)
        if var in source and (source[var] or default is None):
            found = source[var]
        elif default is not None:
            found = default
        else:
            place = f" in {where}" if where else ""
            raise ConfigError(f"environment variable {var} is not set{place}; "
                              f"export it or write ${{{var}:-default}}")
        if expanded is not None and found:
            expanded.setdefault(found, m.group(0))
        return found

    return _VAR.sub(sub, value)


def _expand_tree(node: Any, environ: Mapping[str, str] | None, where: str, expanded: dict[str, str]) -> Any:
    if isinstance(node, str):
        return expand_vars(node, environ, where=where, expanded=expanded)
    if isinstance(node, list):
        return [_expand_tree(v, environ, where, expanded) for v in node]
    if isinstance(node, dict):
        return {k: _expand_tree(v, environ, f"{where}.{k}", expanded) for k, v in node.items()}
    return node


def _str_map(entry: Mapping[str, Any], key: str, where: str) -> dict[str, str]:
    raw = entry.get(key) or {}
    if not isinstance(raw, dict) or not all(isinstance(v, str | int | float | bool) for v in raw.values()):
        raise ConfigError(f"{where}.{key} must be an object of strings")
    return {str(k): str(v) for k, v in raw.items()}


def _entry_to_target(name: str, entry: Any, environ: Mapping[str, str] | None, base: Path | None) -> Target:
    expanded: dict[str, str] = {}
    target = _expanded_entry(name, entry, environ, base, expanded)
    return dataclasses.replace(target, expanded=expanded) if expanded else target


def _expanded_entry(name: str, entry: Any, environ: Mapping[str, str] | None, base: Path | None,
                    expanded: dict[str, str]) -> Target:
    where = f"mcpServers.{name}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be an object with 'command' or 'url'")
    entry = _expand_tree(entry, environ, where, expanded)
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


def _servers(data: Any, source: str) -> dict[str, Any]:
    """The entries of an ``mcpServers`` document by name, as written (VS Code's ``servers`` too)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a JSON object with an 'mcpServers' key")
    servers = data.get("mcpServers", data.get("servers"))
    if not isinstance(servers, dict):
        raise ConfigError(f"{source}: no 'mcpServers' object found")
    if not servers:
        raise ConfigError(f"{source}: 'mcpServers' is empty")
    return {str(name): entry for name, entry in servers.items()}


def _disabled(name: str, entry: Any, source: str) -> bool:
    # Cline's, Roo's and others' way to keep a server in the file without starting it.
    flag = entry.get("disabled", False) if isinstance(entry, dict) else False
    if not isinstance(flag, bool):
        raise ConfigError(f"{source}: mcpServers.{name}.disabled must be true or false")
    return flag


def _enabled(entries: dict[str, Any], source: str) -> dict[str, Any]:
    """The entries without ``"disabled": true``."""
    enabled = {name: entry for name, entry in entries.items() if not _disabled(name, entry, source)}
    if not enabled:
        raise ConfigError(f'{source}: every server in \'mcpServers\' is disabled ("disabled": true)')
    return enabled


def _chosen(entries: dict[str, Any], only: Collection[str] | None, source: str) -> dict[str, Any]:
    if only is None:
        return _enabled(entries, source)
    for name in only:
        if name in entries and _disabled(name, entries[name], source):
            raise ConfigError(f'server {name!r} in {source} is disabled ("disabled": true); remove that to use it')
        if name not in entries:
            close = difflib.get_close_matches(name, list(entries), n=3, cutoff=0.5)
            hint = (f"did you mean {', '.join(map(repr, close))}?" if close
                    else f"it defines {', '.join(sorted(entries))}")
            raise ConfigError(f"no server {name!r} in {source}; {hint}")
    return {name: entries[name] for name in only}


def parse_config(data: Any, *, environ: Mapping[str, str] | None = None, base: Path | None = None,
                 source: str = "config", only: Collection[str] | None = None) -> dict[str, Target]:
    """Targets from a parsed ``{"mcpServers": {...}}`` document (Claude Desktop / Cursor / VS Code).

    VS Code's ``{"servers": {...}}`` spelling is accepted too. An entry with ``"disabled": true``
    is left out (naming it in ``only`` is an error). ``only`` parses just those entries, in that
    order: the others are neither expanded nor checked, so a ``${VAR}`` that only they use may be
    unset.

    Raises:
        ConfigError: the document is not of that shape (the message names the offending entry),
            or ``only`` names an entry it lacks (the message offers close names, or lists them all)
            or a disabled one; every entry is disabled.
    """
    entries = _chosen(_servers(data, source), only, source)
    return {name: _entry_to_target(name, entry, environ, base) for name, entry in entries.items()}


def _read(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Every ``mcpServers`` entry of a JSON config file by name, disabled ones too."""
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
    return _servers(data, str(p))


def read_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The enabled ``mcpServers`` entries of a JSON config file by name, as written: nothing is
    expanded or checked beyond the document's shape (``load_config`` does that); an entry with
    ``"disabled": true`` is left out.

    Raises:
        ConfigError: the file is missing, not JSON, or not an ``mcpServers`` document, or every
            entry is disabled.
    """
    return _enabled(_read(path), str(path))


def load_config(path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None,
                only: Collection[str] | None = None) -> dict[str, Target]:
    """Read an ``mcpServers`` JSON file into named targets (``${VAR}`` expanded); ``only`` as
    for ``parse_config``. A relative ``cwd`` is taken from the file's folder.

    Raises:
        ConfigError: the file is missing, not JSON, or not an ``mcpServers`` document; an entry
            is malformed (the message names the file and the entry); ``only`` names an unknown one.
    """
    p = Path(path)
    entries = _chosen(_read(p), only, str(p))
    try:
        return {name: _entry_to_target(name, entry, environ, p.resolve().parent) for name, entry in entries.items()}
    except ConfigError as e:
        raise ConfigError(f"{p}: {e.detail}") from None
