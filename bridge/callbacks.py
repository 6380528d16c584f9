"""Answers to the requests a server sends back: elicitation (ask the user) and roots.

Each builder returns a callback in the SDK's shape, ready for ``ClientCallbacks``.
Sampling, which needs a model, lives in ``bridge.autogen.sampling``.

A callback answers whichever server asked; ``for_server(callback, label)`` (the session applies
it) makes the user's name for that server known while the callback runs, as ``server_label()``,
so a prompt can say whose request it shows.
"""

from __future__ import annotations

import inspect
import os
import shutil
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal, TypeAlias

import anyio
import mcp_types as types
from mcp.client.session import ClientRequestContext, ElicitationFnT, ListRootsFnT

from .sanitize import one_line, quoted

__all__ = ["ElicitationAnswer", "console_elicitation", "elicitation_from", "for_server", "server_label",
           "static_roots"]

_SERVER: ContextVar[str] = ContextVar("bridge_server_label", default="")


def server_label() -> str:
    """The user's name for the server whose request the running callback answers (``""``
    outside ``for_server``)."""
    return _SERVER.get()


def for_server(callback: ElicitationFnT, label: Callable[[], str]) -> ElicitationFnT:
    """``callback`` with ``label()`` (the connection's name, read at each request) as
    ``server_label()`` while it runs."""

    async def labelled(context: ClientRequestContext, params: types.ElicitRequestParams
                       ) -> types.ElicitResult | types.ErrorData:
        token = _SERVER.set(label())
        try:
            return await callback(context, params)
        finally:
            _SERVER.reset(token)

    return labelled

ElicitationAnswer: TypeAlias = Mapping[str, Any] | Literal["decline", "cancel"] | None
"""What an elicitation handler returns: the form's values (accept), ``"decline"``, or
``"cancel"``/``None`` (dismissed)."""

ElicitationHandler: TypeAlias = Callable[[str, Mapping[str, Any]], ElicitationAnswer | Awaitable[ElicitationAnswer]]


def _result(answer: ElicitationAnswer) -> types.ElicitResult:
    if answer is None or answer == "cancel":
        return types.ElicitResult(action="cancel")
    if answer == "decline":
        return types.ElicitResult(action="decline")
    assert isinstance(answer, Mapping)
    return types.ElicitResult(action="accept", content=dict(answer))


def elicitation_from(handler: ElicitationHandler) -> ElicitationFnT:
    """Wrap ``handler(message, requested_schema)`` (sync or async) as an elicitation callback.

    URL-mode requests (open a link out of band) are declined: a library cannot open a browser
    on someone's behalf.
    """

    async def callback(context: ClientRequestContext, params: types.ElicitRequestParams
                       ) -> types.ElicitResult | types.ErrorData:
        if isinstance(params, types.ElicitRequestURLParams):
            return types.ElicitResult(action="decline")
        answer = handler(params.message, params.requested_schema)
        if inspect.isawaitable(answer):
            answer = await answer
        return _result(answer)

    return callback


def _coerce(raw: str, prop: Mapping[str, Any]) -> Any:
    kind = prop.get("type")
    if kind == "boolean":
        return raw.strip().lower() in ("y", "yes", "true", "1")
    if kind == "integer":
        return int(raw)
    if kind == "number":
        return float(raw)
    if kind == "array":
        return [part.strip() for part in raw.split(",") if part.strip()]
    return raw


def _field_prompt(key: str, prop: Mapping[str, Any], required: bool) -> str:
    # Title, choices and default are the server's words: one line each, controls escaped.
    label = one_line(str(prop.get("title") or key))
    hint = f" ({'/'.join(one_line(str(v)) for v in prop['enum'])})" if prop.get("enum") else ""
    default = prop.get("default")
    suffix = f" [{one_line(str(default))}]" if default is not None else ""
    return f"  {label}{hint}{suffix}{'' if required else ' (optional)'}: "


def console_elicitation(input_fn: Callable[[str], str] = input, print_fn: Callable[[str], None] = print,
                        width: int | None = None) -> ElicitationFnT:
    """Ask the person at the console to fill the server's form, one field at a time.

    Works with ``input()`` as AutoGen's ``UserProxyAgent`` does; an empty answer to an
    optional field leaves it out, ``!decline`` declines and ``!cancel`` dismisses.

    The server's message is shown as its own (``server 'mail' asks:``, every row behind a ``|``
    gutter cut to ``width``, default the terminal's; controls, bidi and invisible characters
    escaped), so it cannot pose as the bridge's approval prompt and take the answer meant for it.
    """

    def ask(server: str, message: str, schema: Mapping[str, Any]) -> ElicitationAnswer:
        columns = width or shutil.get_terminal_size().columns
        print_fn(quoted(f"server '{server}'" if server else "an unnamed server", message, "asks", columns))
        required = set(schema.get("required") or [])
        values: dict[str, Any] = {}
        for key, prop in (schema.get("properties") or {}).items():
            default = prop.get("default")
            while True:
                raw = input_fn(_field_prompt(str(key), prop, key in required)).strip()
                if raw in ("!decline", "!cancel"):
                    return "decline" if raw == "!decline" else "cancel"
                if not raw:
                    if default is not None:
                        values[key] = default
                        break
                    if key not in required:
                        break
                    print_fn("  this field is required")
                    continue
                try:
                    values[key] = _coerce(raw, prop)
                    break
                except ValueError:
                    print_fn(f"  expected a {one_line(str(prop.get('type')))}")
        return values

    async def run(message: str, schema: Mapping[str, Any]) -> ElicitationAnswer:
        # input() blocks; keep the event loop (and the session's other calls) running.
        return await anyio.to_thread.run_sync(ask, server_label(), message, schema)

    return elicitation_from(run)


def static_roots(roots: Iterable[str | os.PathLike[str]] | Mapping[str, str | os.PathLike[str]]) -> ListRootsFnT:
    """Answer ``roots/list`` with fixed directories (paths or ``file://`` URIs; a mapping names them)."""
    named: list[tuple[str | None, str]] = []
    items = roots.items() if isinstance(roots, Mapping) else ((None, r) for r in roots)
    for name, root in items:
        text = os.fspath(root)
        uri = text if text.startswith("file://") else Path(text).resolve().as_uri()
        named.append((name if isinstance(name, str) else None, uri))
    result = types.ListRootsResult(roots=[types.Root(uri=uri, name=name) for name, uri in named])  # type: ignore[arg-type]

    async def callback(context: ClientRequestContext) -> types.ListRootsResult | types.ErrorData:
        return result

    return callback

