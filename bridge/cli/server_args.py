"""Which server a command talks to: a URL, a command after ``--``, or ``--config F --server N``.

This module only parses and checks options; ``bridge.targets`` does the real work
(URL/command parsing, ``mcpServers`` files, ``${VAR}`` expansion). The result is a ``Target``.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping, Sequence
from typing import Literal

from ..errors import ConfigError
from ..targets import HttpTarget, StdioTarget, Target, TransportName, load_config, read_config, resolve_target
from .option_types import positive_seconds

__all__ = ["add_server_options", "choose_server", "parse_env", "parse_headers"]

_URL = re.compile(r"^https?://", re.IGNORECASE)
# bridge.options.DEFAULT_CALL_TIMEOUT, spelled out: importing that module loads the SDK, which
# --help never does (a unit test holds the two equal).
_CALL_TIMEOUT_SHOWN = "180"


def add_server_options(parser: argparse.ArgumentParser, *, calls_tools: bool = False,
                       lock_option: Literal["guard", "required", "none"] = "guard") -> None:
    """The options that name a server and how to reach it (shared by every server command).

    ``calls_tools``: ``--timeout`` bounds the tool call and ``--start-timeout`` the start-up (a
    server started by npx can take seconds before the call's own bound should start counting).
    ``lock_option``: which of ``--lock``/``--lock-policy`` the command takes (see ``Command``).
    """
    from .context import DEFAULT_TIMEOUT

    group = parser.add_argument_group("server")
    group.add_argument("--config", metavar="FILE",
                       help="an mcpServers JSON file (Claude Desktop / Cursor / VS Code format); ${VAR} and "
                            "${VAR:-default} are expanded from the environment")
    group.add_argument("--server", metavar="NAME", help="which server of --config to use")
    group.add_argument("--env", metavar="K=V", action="append", default=[],
                       help="environment for a stdio server (repeatable); a bare K passes K from your environment")
    group.add_argument("--header", metavar="K:V", action="append", default=[],
                       help="HTTP header for an HTTP/SSE server (repeatable), e.g. 'Authorization: Bearer ...'")
    group.add_argument("--transport", choices=("stdio", "http", "sse"),
                       help="force the transport (default: a URL is Streamable HTTP, or SSE when it ends in /sse)")
    start = f"seconds to start the server and list its tools (default: {DEFAULT_TIMEOUT:g})"
    if calls_tools:
        group.add_argument("--timeout", metavar="SECONDS", type=positive_seconds,
                           help=f"seconds for the tool call itself (default: {_CALL_TIMEOUT_SHOWN})")
        group.add_argument("--start-timeout", metavar="SECONDS", type=positive_seconds, help=start)
    else:
        group.add_argument("--timeout", metavar="SECONDS", type=positive_seconds, help=start)
    if lock_option == "required":
        group.add_argument("--lock", metavar="FILE", help="the lock file to compare with (required; write one "
                                                          "with 'mcp-bridge lock')")
    elif lock_option == "guard":
        group.add_argument("--lock", metavar="FILE",
                           help="compare the server's tools with this lock file (see 'mcp-bridge lock'); what "
                                "happens on drift is --lock-policy")
        group.add_argument("--lock-policy", choices=("warn", "pinned-only", "strict"), default="pinned-only",
                           help="on drift: warn; offer only pinned, unchanged tools (default); or refuse the "
                                "server")


def parse_env(items: Sequence[str], environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``K=V`` pairs (or a bare ``K``, taken from ``environ``) as a dict.

    Raises:
        ConfigError: a malformed item, or a bare name that is not set. Values are never quoted back.
    """
    source = os.environ if environ is None else environ
    env: dict[str, str] = {}
    for n, item in enumerate(items, 1):
        name, sep, value = item.partition("=")
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", name):
            raise ConfigError(f"--env #{n}: expected NAME=VALUE with NAME a variable name")
        if not sep:
            if name not in source:
                raise ConfigError(f"--env {name}: {name} is not set in your environment; pass {name}=VALUE")
            value = source[name]
        env[name] = value
    return env


def parse_headers(items: Sequence[str]) -> dict[str, str]:
    """``Name: value`` items as a dict.

    Raises:
        ConfigError: an item without a colon or with an empty name (the value is never echoed:
            it may be a credential typed in the wrong place).
    """
    headers: dict[str, str] = {}
    for n, item in enumerate(items, 1):
        name, sep, value = item.partition(":")
        name = name.strip()
        if not sep or not name or not re.match(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$", name):
            raise ConfigError(f"--header #{n}: expected 'Name: value'")
        headers[name] = value.strip()
    return headers


def choose_server(args: argparse.Namespace, operands: list[str], command: Sequence[str], *,
                  verb: str = "COMMAND", several: bool = False) -> Target | None:
    """Build the target from the parsed options; consumes the server operand from ``operands``.

    ``command`` is what followed ``--`` on the command line (empty if nothing did); ``verb``
    is the subcommand, for the usage hint when the server is not named first. ``several``: the
    command can take every server of a config at once; then ``None`` means just that (``--config``
    with more than one server and no ``--server``).

    Raises:
        ConfigError: no server, more than one way of naming it, a URL after the tool name,
            options that do not fit the transport, or a malformed or unknown config entry.
    """
    env = parse_env(args.env)
    headers = parse_headers(args.header)
    transport: TransportName | None = args.transport
    sources = [name for name, given in (("a command after --", bool(command)), ("--config", bool(args.config)))
               if given]
    if args.server and not args.config:
        raise ConfigError("--server NAME needs --config FILE")
    if len(sources) > 1:
        raise ConfigError(f"name the server once: got both {sources[0]} and {sources[1]}")
    if command:
        _check_options(False, env, headers)
        return resolve_target(list(command), transport=transport, env=env, headers=headers)
    if args.config:
        if several and args.server is None and len(read_config(args.config)) > 1:
            if env or headers or transport:
                raise ConfigError("--env, --header and --transport apply to one server: pick it with --server NAME")
            return None
        return _from_config(args.config, args.server, transport, env, headers)
    if not operands:
        raise ConfigError("no server given: pass a URL, a command after --, or --config FILE --server NAME")
    spec = operands.pop(0)
    is_url = bool(_URL.match(spec))
    later_url = next((o for o in operands if _URL.match(o)), None)
    if not is_url and later_url is not None:
        # `call get-sum --arg a=1 http://host/mcp`: the tool was typed where the server goes.
        rest = [spec, *(o for o in operands if o is not later_url)]
        raise ConfigError(f"the server goes first: mcp-bridge {verb} {HttpTarget(later_url).safe_url()} "
                          f"{' '.join(rest)} [options]")
    if not is_url and transport in ("http", "sse"):
        raise ConfigError(f"transport {transport!r} needs an http(s) URL, not {spec!r}")
    _check_options(is_url, env, headers)
    return resolve_target(spec, transport=transport, env=env, headers=headers)


def _from_config(path: str, name: str | None, transport: TransportName | None, env: dict[str, str],
                 headers: dict[str, str]) -> Target:
    if name is None:
        entries = read_config(path)
        if len(entries) != 1:
            raise ConfigError(f"{path} defines {len(entries)} servers ({', '.join(sorted(entries))}); "
                              "choose one with --server NAME")
        name = next(iter(entries))
    # Only the chosen entry is parsed, so a ${VAR} that only another server needs may be unset.
    base = load_config(path, only=(name,))[name]
    if isinstance(base, StdioTarget) and transport in ("http", "sse"):
        raise ConfigError(f"server {name!r} in {path} is a stdio command; --transport {transport} needs a URL")
    if isinstance(base, HttpTarget) and transport == "stdio":
        raise ConfigError(f"server {name!r} in {path} is a URL; --transport stdio needs a command")
    _check_options(isinstance(base, HttpTarget), env, headers)
    return resolve_target(base, transport=transport, env=env, headers=headers)


def _check_options(is_http: bool, env: Mapping[str, str], headers: Mapping[str, str]) -> None:
    # Checked here, in the CLI's own words: resolve_target speaks of env=/headers= (its Python
    # API), and silently ignores a stray --env when merging into a config's HTTP target.
    if is_http and env:
        raise ConfigError("--env applies to stdio servers; pass --header for an HTTP or SSE server")
    if not is_http and headers:
        raise ConfigError("--header applies to HTTP and SSE servers; pass --env for a stdio command")
