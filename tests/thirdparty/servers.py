"""Where the pinned third-party MCP servers live and how to launch them.

``scripts/install_third_party.sh`` installs them into ``<repo>/.third_party`` (override with
``THIRD_PARTY_DIR``) from the pins in ``scripts/third_party.lock``; this module reads the same
pins, so a test can tell "not installed" from "installed at another version".

Plain data plus small helpers; it imports neither the bridge nor the SDK. Under pytest,
``tests/`` is on ``sys.path`` (rootdir conftest), so::

    from thirdparty import servers          # or `from tests.thirdparty import servers` from the repo root

    pytestmark = pytest.mark.skipif(not servers.installed(), reason=servers.skip_reason() or "")

    launch = servers.SERVERS["memory"].launch(tmp_path)       # stdio: argv, env, cwd
    StdioServerParameters(**launch.stdio_kwargs())

    with servers.serve_http(servers.SERVERS["everything"], "streamable-http", tmp_path) as url:
        ...                                                   # http://127.0.0.1:<port>/mcp

Every npm server runs under the pinned Node (``NODE``), never the system one. A stdio child
gets only HOME, LOGNAME, PATH, SHELL, TERM, USER from the SDK plus ``Launch.env``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "CONFORMANCE",
    "INSPECTOR",
    "NODE",
    "ROOT",
    "SERVERS",
    "THIRD_PARTY",
    "Launch",
    "ThirdPartyServer",
    "Transport",
    "free_port",
    "installed",
    "pins",
    "serve_http",
    "skip_reason",
]

ROOT = Path(__file__).resolve().parents[2]
LOCK_FILE = ROOT / "scripts" / "third_party.lock"
THIRD_PARTY = Path(os.environ.get("THIRD_PARTY_DIR") or ROOT / ".third_party")
NODE = THIRD_PARTY / "bin" / "node"
NPM_MODULES = THIRD_PARTY / "npm" / "node_modules"
VENVS = THIRD_PARTY / "venvs"

Transport = Literal["stdio", "sse", "streamable-http"]


def pins() -> dict[str, str]:
    """Package name -> pinned version, from ``scripts/third_party.lock`` (``node`` for Node.js)."""
    out: dict[str, str] = {}
    for line in LOCK_FILE.read_text().splitlines():
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if parts[0] == "node":
            out["node"] = parts[1]
        elif parts[0] == "npm":
            out[parts[1]] = parts[2]
        elif parts[0] == "venv":
            out[parts[2]] = parts[3]
    return out


@dataclass(frozen=True)
class Launch:
    """One concrete way to start a server: pass to ``subprocess`` or ``StdioServerParameters``."""

    argv: list[str]
    env: dict[str, str]
    cwd: Path | None = None

    def stdio_kwargs(self) -> dict[str, object]:
        """Keyword arguments for ``mcp.StdioServerParameters`` (the child sees only these env vars
        plus the SDK's HOME, LOGNAME, PATH, SHELL, TERM, USER)."""
        return {
            "command": self.argv[0],
            "args": self.argv[1:],
            "env": dict(self.env),
            "cwd": str(self.cwd) if self.cwd else None,
        }


def _no_setup(workdir: Path) -> dict[str, str]:
    return {}


@dataclass(frozen=True)
class ThirdPartyServer:
    """A pinned, installed MCP server.

    ``launch(workdir)`` runs ``setup(workdir)`` (which creates what the server needs inside
    ``workdir`` and returns placeholders) and fills ``{workdir}``-style placeholders in
    ``args``/``env``. ``workdir`` must be a fresh temporary directory owned by the caller.
    """

    name: str
    package: str
    registry: Literal["npm", "pypi"]
    entry: Path
    """The script or executable; npm entries are run as ``[NODE, entry, ...]``."""
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    transports: tuple[Transport, ...] = ("stdio",)
    setup: Callable[[Path], dict[str, str]] = _no_setup
    http_paths: Mapping[Transport, str] = field(default_factory=dict)
    """URL path per HTTP transport (the port comes from the ``PORT`` env var)."""
    mode_args: Mapping[Transport, tuple[str, ...]] = field(default_factory=dict)
    """Extra arguments selecting a transport (server-everything: ``stdio|sse|streamableHttp``)."""
    notes: str = ""

    @property
    def version(self) -> str:
        return pins()[self.package]

    def installed_version(self) -> str | None:
        """The version actually installed, or None when missing."""
        if self.registry == "npm":
            try:
                return str(json.loads((NPM_MODULES / self.package / "package.json").read_text())["version"])
            except (OSError, ValueError, KeyError):
                return None
        dist = self.package.replace("-", "_")
        found = sorted(self.entry.parent.parent.glob(f"lib/python*/site-packages/{dist}-*.dist-info"))
        return found[0].name[len(dist) + 1 : -len(".dist-info")] if found else None

    def launch(self, workdir: Path, transport: Transport = "stdio", *, port: int | None = None) -> Launch:
        """Prepare ``workdir`` and return the command line; HTTP transports need ``port``."""
        if transport not in self.transports:
            raise ValueError(f"{self.name} does not serve {transport!r} (only {self.transports})")
        values = {"workdir": str(workdir), **self.setup(workdir)}
        argv = [str(NODE), str(self.entry)] if self.registry == "npm" else [str(self.entry)]
        argv += [a.format(**values) for a in self.args] + list(self.mode_args.get(transport, ()))
        env = {k: v.format(**values) for k, v in self.env.items()}
        if transport != "stdio":
            if port is None:
                raise ValueError(f"{transport} needs a port")
            env["PORT"] = str(port)
        return Launch(argv=argv, env=env, cwd=workdir)

    def url(self, transport: Transport, port: int) -> str:
        """Where an HTTP transport listens; always 127.0.0.1 (the servers bind all interfaces)."""
        return f"http://127.0.0.1:{port}{self.http_paths[transport]}"


def _memory_setup(workdir: Path) -> dict[str, str]:
    return {"memory_file": str(workdir / "memory.jsonl")}


def _filesystem_setup(workdir: Path) -> dict[str, str]:
    root = workdir / "root"
    root.mkdir(exist_ok=True)
    return {"root": str(root.resolve())}


def _git_setup(workdir: Path) -> dict[str, str]:
    """A repository with one commit (``README.md``) so log/diff/branch tools have something to show."""
    repo = workdir / "repo"
    repo.mkdir(exist_ok=True)
    git = shutil.which("git")
    if git is None:
        raise RuntimeError("mcp-server-git needs the git executable on PATH")
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
    }
    if not (repo / ".git").exists():
        subprocess.run([git, "init", "-q", "-b", "main", str(repo)], check=True, env=env)
        (repo / "README.md").write_text("hello\n")
        subprocess.run([git, "-C", str(repo), "add", "README.md"], check=True, env=env)
        subprocess.run([git, "-C", str(repo), "commit", "-q", "-m", "initial"], check=True, env=env)
    return {"repo": str(repo.resolve())}


def _npm(name: str, package: str, **kw: Any) -> ThirdPartyServer:
    entry = NPM_MODULES / package / "dist" / "index.js"
    return ThirdPartyServer(name=name, package=package, registry="npm", entry=entry, **kw)


def _pypi(name: str, package: str, **kw: Any) -> ThirdPartyServer:
    entry = VENVS / name / "bin" / package
    return ThirdPartyServer(name=name, package=package, registry="pypi", entry=entry, **kw)


SERVERS: dict[str, ThirdPartyServer] = {
    s.name: s
    for s in [
        _npm(
            "everything",
            "@modelcontextprotocol/server-everything",
            transports=("stdio", "sse", "streamable-http"),
            mode_args={"stdio": ("stdio",), "sse": ("sse",), "streamable-http": ("streamableHttp",)},
            http_paths={"sse": "/sse", "streamable-http": "/mcp"},
            notes="HTTP modes read PORT and bind all interfaces; sampling/elicitation/roots tools are "
            "listed only when the client declares that capability.",
        ),
        _npm(
            "filesystem",
            "@modelcontextprotocol/server-filesystem",
            args=("{root}",),
            setup=_filesystem_setup,
            notes="Allowed directory = workdir/root (resolved); paths outside are refused. A client that "
            "declares roots has its roots replace the allowed directories.",
        ),
        _npm(
            "memory",
            "@modelcontextprotocol/server-memory",
            env={"MEMORY_FILE_PATH": "{memory_file}"},
            setup=_memory_setup,
            notes="Without MEMORY_FILE_PATH it writes into its own package folder.",
        ),
        _npm(
            "sequential-thinking",
            "@modelcontextprotocol/server-sequential-thinking",
            env={"DISABLE_THOUGHT_LOGGING": "true"},
            notes="Thought logging (boxes on stderr) disabled.",
        ),
        _npm(
            "github",
            "@modelcontextprotocol/server-github",
            notes="Lists tools without a token; every call goes to api.github.com (no network here). "
            "Old SDK: negotiates 2024-11-05.",
        ),
        _pypi("time", "mcp-server-time", args=("--local-timezone", "UTC")),
        _pypi(
            "git",
            "mcp-server-git",
            args=("--repository", "{repo}"),
            setup=_git_setup,
            notes="workdir/repo is a fresh repository with one commit; needs git on PATH.",
        ),
    ]
}

CONFORMANCE: list[str] = [str(NODE), str(NPM_MODULES / "@modelcontextprotocol/conformance" / "dist" / "index.js")]
"""argv prefix of the conformance suite, e.g. ``CONFORMANCE + ["client", "--command", ...]``."""
INSPECTOR: list[str] = [
    str(NODE),
    str(NPM_MODULES / "@modelcontextprotocol/inspector" / "clients" / "launcher" / "build" / "index.js"),
]
"""argv prefix of the MCP Inspector launcher (``--cli`` for the command-line client)."""


def skip_reason() -> str | None:
    """Why third-party tests cannot run, or None when every pinned server is installed."""
    hint = "run scripts/install_third_party.sh"
    if not NODE.exists():
        return f"third-party servers not installed ({THIRD_PARTY} has no node): {hint}"
    for server in SERVERS.values():
        got = server.installed_version()
        if got is None or not server.entry.exists():
            return f"{server.package} not installed in {THIRD_PARTY}: {hint}"
        if got != server.version:
            return f"{server.package} is {got}, pinned {server.version}: {hint}"
    if not Path(CONFORMANCE[1]).exists():
        return f"conformance suite not installed in {THIRD_PARTY}: {hint}"
    return None


def installed() -> bool:
    return skip_reason() is None


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (racy by nature; the servers take a PORT, not a socket)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve_http(
    server: ThirdPartyServer, transport: Transport, workdir: Path, *, timeout: float = 20.0
) -> Iterator[str]:
    """Run ``server`` over an HTTP transport until the block ends; yields its 127.0.0.1 URL.

    The server's output goes to ``workdir/<name>-<transport>.log``. Raises RuntimeError if it exits
    or does not accept connections within ``timeout`` seconds.
    """
    port = free_port()
    launch = server.launch(workdir, transport, port=port)
    log_path = workdir / f"{server.name}-{transport}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            launch.argv,
            env={**os.environ, **launch.env},
            cwd=launch.cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{server.name} {transport} exited {proc.returncode}: "
                        f"{log_path.read_text(errors='replace')[-2000:]}"
                    )
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{server.name} {transport} not listening on {port} after {timeout}s")
                time.sleep(0.05)
            yield server.url(transport, port)
        finally:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
