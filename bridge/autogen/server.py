"""``connect()``: the one entry point, and the ``Server`` it yields to AutoGen code."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import httpx2
from autogen_core.models import ChatCompletionClient
from mcp.client.session import ElicitationFnT, SamplingFnT

from ..approval import ApprovalPolicy, Approver
from ..callbacks import console_elicitation, static_roots
from ..connection import Connection, Interceptor, ProgressListener
from ..lock import LockFile, LockGuard, LockPolicy
from ..results import DEFAULT_MAX_CHARS
from ..selection import ToolFilter
from ..session import ClientCallbacks, Session
from ..targets import Target, TransportName, resolve_target
from . import agents
from .sampling import sampling_from_model_client
from .tool import MCPTool
from .workbench import MCPWorkbench

__all__ = ["DEFAULT_CALL_TIMEOUT", "Server", "connect"]

# Long enough for MultiMail's wait_for_email (up to 120 s) plus network slack.
DEFAULT_CALL_TIMEOUT = 180.0


class Server(Connection):
    """A connected MCP server whose tools are AutoGen ``FunctionTool``s.

    Obtain one with ``connect()``. ``tools()`` always reflects the server's current
    catalogue; ``call()`` returns a full ``CallResult``.
    """

    async def __aenter__(self) -> Server:
        await super().__aenter__()
        return self

    async def tools(self, *, agent: str | None = None, interceptors: Sequence[Interceptor] = ()) -> list[MCPTool]:
        """Every tool of the server as an ``MCPTool`` (a ``FunctionTool``), sharing this session.

        Args:
            agent: the agent these tools are bound to (approvals and audit records name it).
            interceptors: wrappers run around every call, outermost first.
        """
        catalogue = await self.catalogue()
        return [MCPTool(self, entry, agent=agent, interceptors=interceptors) for entry in catalogue]

    async def tools_for(self, agent: str, *, include: agents.Patterns = None, exclude: agents.Patterns = None,
                        read_only: bool | None = None, select: ToolFilter | None = None,
                        approval: ApprovalPolicy | Literal[False] | None = None, approver: Approver | None = None,
                        audit: agents.AuditTarget = None, interceptors: Sequence[Interceptor] = ()
                        ) -> list[MCPTool]:
        """The tools ``agent`` may use, for ``AssistantAgent(tools=...)``, guarded.

        By default every tool not annotated read-only asks a human first (``ConsoleApprover``).

        ```python
        tools = await server.tools_for("triage", read_only=True, audit="audit.jsonl")
        ```

        Args:
            agent: bound into every call (approvals and audit records name it).
            include, exclude: globs on MCP or safe names; exclusion wins.
            read_only: keep only tools annotated read-only (True) or only the others (False).
            select: a prepared ``ToolFilter`` (e.g. with ``opt_in=MULTIMAIL_ACCOUNT_TOOLS``).
            approval: when to ask (default ``ApprovalPolicy()``); ``False``: no approval gate.
            approver: who answers (default ``ConsoleApprover()``).
            audit: an ``AuditLog`` or a path (``.jsonl``; ``.db``/``.sqlite`` for SQLite).
            interceptors: further wrappers, run after approval.

        Raises:
            ConfigError: malformed patterns or options.
        """
        return await agents.tools_for(self, agent, include=include, exclude=exclude, read_only=read_only,
                                      select=select, approval=approval, approver=approver, audit=audit,
                                      interceptors=interceptors)

    def workbench_for(self, agent: str, *, include: agents.Patterns = None, exclude: agents.Patterns = None,
                      read_only: bool | None = None, select: ToolFilter | None = None,
                      approval: ApprovalPolicy | Literal[False] | None = None, approver: Approver | None = None,
                      audit: agents.AuditTarget = None, interceptors: Sequence[Interceptor] = ()) -> MCPWorkbench:
        """Like ``tools_for``, as a workbench for ``AssistantAgent(workbench=...)``.

        The workbench answers from the cached catalogue and follows tools/list_changed, so the
        agent sees tools the server adds or removes while it runs.

        Raises:
            ConfigError: malformed patterns or options.
        """
        return agents.workbench_for(self, agent, include=include, exclude=exclude, read_only=read_only,
                                    select=select, approval=approval, approver=approver, audit=audit,
                                    interceptors=interceptors)


def _callbacks(base: ClientCallbacks | None, sampling: ChatCompletionClient | SamplingFnT | None,
               elicitation: ElicitationFnT | Literal["console"] | None,
               roots: Sequence[str | os.PathLike[str]] | Mapping[str, str | os.PathLike[str]] | None,
               ) -> ClientCallbacks | None:
    """Fold the convenience arguments into one ``ClientCallbacks`` (explicit ones win)."""
    if sampling is None and elicitation is None and roots is None:
        return base
    merged = base or ClientCallbacks()
    if isinstance(sampling, ChatCompletionClient):
        sampling = sampling_from_model_client(sampling)
    return dataclasses.replace(
        merged,
        sampling=merged.sampling or sampling,
        elicitation=merged.elicitation or (console_elicitation() if elicitation == "console" else elicitation),
        list_roots=merged.list_roots or (static_roots(roots) if roots is not None else None),
    )


def connect(
    target: Target | str | Sequence[str],
    *,
    transport: TransportName | None = None,
    env: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float = 30.0,
    call_timeout: float = DEFAULT_CALL_TIMEOUT,
    mode: str = "auto",
    name: str = "",
    prefix: str = "",
    callbacks: ClientCallbacks | None = None,
    sampling: ChatCompletionClient | SamplingFnT | None = None,
    elicitation: ElicitationFnT | Literal["console"] | None = None,
    roots: Sequence[str | os.PathLike[str]] | Mapping[str, str | os.PathLike[str]] | None = None,
    auth: httpx2.Auth | None = None,
    reconnect_attempts: int = 3,
    max_result_chars: int = DEFAULT_MAX_CHARS,
    on_progress: ProgressListener | None = None,
    lock: LockFile | str | os.PathLike[str] | None = None,
    lock_policy: LockPolicy = "pinned-only",
    **extra: Any,
) -> Server:
    """Connect to an MCP server; use the result as an async context manager.

    ```python
    async with connect("http://127.0.0.1:8000/mcp", headers={"Authorization": "Bearer ..."}) as server:
        tools = await server.tools()
        result = await server.call("send_email", {"to": ["a@b.co"], "subject": "hi", "markdown": "..."})
    ```

    Args:
        target: an ``http(s)://`` URL (Streamable HTTP; SSE when ``transport="sse"`` or the
            path ends in ``/sse``), a command line or argv list (stdio), or a ``Target``.
        env: extra environment for a stdio server, merged over the SDK's minimal one.
        headers: HTTP headers for HTTP/SSE servers (e.g. ``Authorization``).
        cwd: working directory for a stdio server.
        timeout: seconds to start, handshake and list tools.
        call_timeout: default seconds per tool call (override per call).
        mode: ``"auto"`` negotiates 2026-07-28 or falls back to the initialize handshake;
            ``"legacy"`` forces the handshake.
        name: a label for messages and audit records (default: derived from the target).
        prefix: prepend ``<prefix>_`` to every tool name.
        callbacks: sampling / elicitation / roots / logging answers in the SDK's shapes.
        sampling: answer the server's sampling requests with this AutoGen model client (or a
            ready SDK sampling callback).
        elicitation: answer the server's elicitation requests: an SDK callback (see
            ``bridge.callbacks.elicitation_from``) or ``"console"`` to ask at the terminal.
        roots: directories to offer as roots (paths or ``file://`` URIs; a mapping names them).
        auth: an ``httpx2.Auth`` for an HTTP/SSE server, run on every request; for OAuth 2.1
            the SDK's ``mcp.client.auth.OAuthClientProvider`` (discovery, registration,
            PKCE, token refresh; its redirect and callback handlers get the user's consent).
        reconnect_attempts: re-establish a dead connection up to this many times per request.
        max_result_chars: truncate model-facing result text past this many characters.
        on_progress: ``async (call, progress, total, message)`` for progress reports of calls made
            without their own ``progress=`` (agents' calls included): show them, log them.
        lock: a lock file (``mcp-bridge lock``) every listing is compared with, at connect
            time and after each tools/list_changed.
        lock_policy: what drift does: ``"warn"`` logs it; ``"pinned-only"`` offers only tools
            pinned and unchanged; ``"strict"`` refuses the server (``CatalogueDrift``).

    Raises:
        ConfigError: the target, options or lock file are malformed (raised here, before connecting).
    """
    resolved = resolve_target(target, transport=transport, env=env, headers=headers, cwd=cwd, name=name, auth=auth)
    callbacks = _callbacks(callbacks, sampling, elicitation, roots)
    session = Session(resolved, timeout=timeout, call_timeout=call_timeout, mode=mode,
                      reconnect_attempts=reconnect_attempts, callbacks=callbacks, **extra)
    guards = [LockGuard(lock, lock_policy)] if lock is not None else []
    return Server(session, prefix=prefix, max_result_chars=max_result_chars, guards=guards, on_progress=on_progress)
