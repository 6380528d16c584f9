"""``connect()``: the one entry point, and the ``Server`` it yields.

A ``Server`` is a ``Connection`` (catalogue, ``call``, ``call_checked``) plus the ways to hand its
tools to an agent: ``toolset(agent, ...)`` for any framework adapter, and, because AutoGen is
the first-class target, ``tools()`` / ``tools_for()`` / ``workbench_for()`` returning AutoGen
objects: sugar for ``bridge.autogen.tools_for(server, agent=...)`` and ``workbench_for``, the
adapter's entry points. Those three import ``bridge.autogen`` (and so ``autogen_core``) on first
use only: ``import bridge`` loads no agent framework.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import mcp_types as types
from mcp.client.session import ElicitationFnT, SamplingFnT

from .callbacks import console_elicitation, static_roots
from .connection import Connection, Interceptor
from .guards import Guards
from .options import Options
from .published import Published, RenderedPrompt, ResourceRead
from .server_requests import ServerRequestGuard
from .session import Session
from .targets import Target, TransportName, resolve_target
from .toolset import Toolset

if TYPE_CHECKING:
    import httpx2

    from .autogen import MCPTool, MCPWorkbench

__all__ = ["Server", "connect"]


class Server(Connection):
    """A connected MCP server. Obtain one with ``connect()``; use it as an async context manager.

    ``call()`` returns a full ``CallResult``; the tool methods always reflect the server's
    current catalogue.
    """

    async def __aenter__(self) -> Server:
        await super().__aenter__()
        return self

    # -- resources and prompts (``bridge.published``: listed once per change, scoped, bounded) ---------

    @property
    def published(self) -> Published:
        """The server's resources, templates and prompts, kept current by its notifications."""
        return Published.of(self.session)

    async def resources(self) -> tuple[types.Resource, ...]:
        """Every resource the server lists (all pages; empty when it offers none)."""
        return await self.published.resources()

    async def resource_templates(self) -> tuple[types.ResourceTemplate, ...]:
        """Every resource template the server lists (all pages; empty when it offers none)."""
        return await self.published.resource_templates()

    async def read_resource(self, uri: str) -> ResourceRead:
        """Read a URI the server listed or templated; its ``text`` is bounded by ``Options.max_result_chars``.

        Raises:
            InvalidArguments: a ``..`` URI, or one the server neither lists nor templates (nothing sent).
            ProtocolError, CallTimeout, ConnectionLost: the read failed.
        """
        return await self.published.read(uri, max_chars=self.max_result_chars)

    async def prompts(self) -> tuple[types.Prompt, ...]:
        """Every prompt the server lists (all pages; empty when it offers none)."""
        return await self.published.prompts()

    async def get_prompt(self, name: str, arguments: Mapping[str, str] | None = None) -> RenderedPrompt:
        """The prompt ``name`` filled in, as framework-neutral messages (each adapter's
        ``prompt_messages`` turns them into its own).

        Raises:
            InvalidArguments: an unlisted prompt, or a required argument missing (named); nothing sent.
            ProtocolError, CallTimeout, ConnectionLost: the request failed.
        """
        return await self.published.get_prompt(name, arguments, max_chars=self.max_result_chars)

    def toolset(self, agent: str | None = None, guards: Guards | None = None, *, growing: bool = False,
                **guard_options: Any) -> Toolset:
        """The tools ``agent`` may use, framework-neutral (what every adapter builds on).

        Args:
            agent: named in approvals and audit records.
            guards: a prepared ``Guards``; ``guard_options`` (its fields as keywords) override it.
            growing: the framework re-reads the tool list every turn (see ``Toolset``).

        Raises:
            ConfigError: malformed guard options.
        """
        return Toolset(self, agent=agent, guards=Guards.of(guards, **guard_options), growing=growing)

    async def tools(self, *, agent: str | None = None, interceptors: Sequence[Interceptor] = ()) -> list[MCPTool]:
        """Every tool as an AutoGen ``MCPTool`` (a ``FunctionTool``), sharing this session, **unguarded**:
        no approval gate, no audit. For an agent, prefer ``tools_for``.

        Args:
            agent: the agent these tools are bound to (interceptors and records name it).
            interceptors: wrappers run around every call, outermost first.
        """
        from .autogen import tools_for

        return await tools_for(self.toolset(agent, approval=False, interceptors=tuple(interceptors),
                                            warn_unguarded=False))

    async def tools_for(self, agent: str, guards: Guards | None = None, **guard_options: Any) -> list[MCPTool]:
        """The tools ``agent`` may use, for ``AssistantAgent(tools=...)``, guarded.

        By default every tool not annotated read-only asks a human first (``ConsoleApprover``).

        ```python
        tools = await server.tools_for("triage", read_only=True, audit="audit.jsonl")
        ```

        Args:
            agent: bound into every call (approvals and audit records name it).
            guards, guard_options: see ``Guards`` (include, exclude, read_only, select, approval,
                approver, audit, interceptors, catalogue, always, ...).

        Raises:
            ConfigError: malformed patterns or options.
        """
        from .autogen import tools_for

        return await tools_for(self, agent, guards, **guard_options)

    def workbench_for(self, agent: str, guards: Guards | None = None, **guard_options: Any) -> MCPWorkbench:
        """Like ``tools_for``, as a workbench for ``AssistantAgent(workbench=...)``.

        The workbench answers from the cached catalogue and follows tools/list_changed, so the
        agent sees tools the server adds or removes while it runs.

        Raises:
            ConfigError: malformed patterns or options.
        """
        from .autogen import workbench_for

        return workbench_for(self, agent, guards, **guard_options)


Roots = Sequence[str | os.PathLike[str]] | Mapping[str, str | os.PathLike[str]]


def _sampling(value: Any) -> SamplingFnT | None:
    if value is None or inspect.iscoroutinefunction(value) or not hasattr(value, "create"):
        return value  # type: ignore[no-any-return]
    # An AutoGen ChatCompletionClient: the first-class target's model answers sampling requests.
    from .autogen.sampling import sampling_from_model_client

    return sampling_from_model_client(value)


def connect(
    target: Target | str | Sequence[str],
    *,
    transport: TransportName | None = None,
    env: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    name: str = "",
    auth: httpx2.Auth | None = None,
    options: Options | None = None,
    sampling: SamplingFnT | Any | None = None,
    elicitation: ElicitationFnT | Literal["console"] | None = None,
    roots: Roots | None = None,
    **option_overrides: Any,
) -> Server:
    """Connect to an MCP server; use the result as an async context manager.

    ```python
    async with connect("http://127.0.0.1:8000/mcp", headers={"Authorization": "Bearer ..."}) as server:
        tools = await server.tools_for("assistant")
        result = await server.call("send_email", {"to": ["a@b.co"], "subject": "hi", "markdown": "..."})
    ```

    Args:
        target: an ``http(s)://`` URL (Streamable HTTP; SSE when ``transport="sse"`` or the
            path ends in ``/sse``), a command line or argv list (stdio), or a ``Target``.
        env: extra environment for a stdio server, merged over the SDK's minimal one.
        headers: HTTP headers for HTTP/SSE servers (e.g. ``Authorization``).
        cwd: working directory for a stdio server.
        name: the user's name for the server, used by messages, approval rules and audit records
            (default: from the target: the module of ``python -m``, the package an ``npx``/``uvx``
            runs, the URL's host and path). The server's own ``serverInfo.name`` is never the
            label: it is kept as its claim in ``server.info``.
        auth: an ``httpx2.Auth`` for an HTTP/SSE server, run on every request; for OAuth 2.1
            the SDK's ``mcp.client.auth.OAuthClientProvider``.
        options: a prepared ``Options``; ``option_overrides`` (its fields as keywords:
            ``timeout``, ``call_timeout``, ``mode``, ``reconnect_attempts``, ``prefix``,
            ``max_result_chars``, ``lock``, ``lock_policy``, ``callbacks``, ``on_progress``, ...)
            override it.
        sampling: answer the server's sampling requests: an SDK callback, or an AutoGen model client.
            Every request is budgeted, its ``maxTokens`` capped, optionally approved, and recorded
            (``server_requests=ServerRequestGuard(...)``; the defaults apply when it is not given).
        elicitation: an SDK callback (see ``bridge.callbacks.elicitation_from``) or ``"console"``.
        roots: directories to offer as roots (paths or ``file://`` URIs; a mapping names them).

    Raises:
        ConfigError: the target, an option or the lock file is malformed (raised here, before connecting).
    """
    resolved = resolve_target(target, transport=transport, env=env, headers=headers, cwd=cwd, name=name, auth=auth)
    opts = Options.of(options, **option_overrides)
    if sampling is not None or elicitation is not None or roots is not None:
        cb = opts.callbacks
        opts = dataclasses.replace(opts, callbacks=dataclasses.replace(
            cb,
            sampling=cb.sampling or _sampling(sampling),
            elicitation=cb.elicitation or (console_elicitation() if elicitation == "console" else elicitation),
            list_roots=cb.list_roots or (static_roots(roots) if roots is not None else None),
        ))
    return Server(Session(resolved, guarded(opts)))


def guarded(options: Options) -> Options:
    """``options`` with the default ``ServerRequestGuard`` when it names none: every connection
    opened through ``connect()`` or ``open_servers()`` has its server's requests budgeted."""
    if options.server_requests is not None:
        return options
    return dataclasses.replace(options, server_requests=ServerRequestGuard())
