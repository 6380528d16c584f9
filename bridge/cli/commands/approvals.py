"""``mcp-bridge approvals [list|show ID|approve ID|deny ID|serve] --store FILE|URL``: the approval
queue, from a terminal or a small web page."""

from __future__ import annotations

import argparse
import getpass
import json
import time
from typing import TYPE_CHECKING

from ...errors import ConfigError
from ..context import Command, Context
from ..option_types import whole_number
from ..status import ExitCode

if TYPE_CHECKING:
    from rich.table import Table

    from ...approvals import ApprovalRequest, ApprovalStore, Status

__all__ = ["COMMAND"]

_ACTIONS = ("list", "show", "approve", "deny", "serve")
_WATCH_INTERVAL = 1.0
_ARGUMENTS_SHOWN = 200
_LISTED = 500
_PORT = whole_number(0, 65535, out_of_range="a port is 0 to 65535 (0: any free port)")


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("approvals")
    group.add_argument("--store", metavar="FILE|URL", required=True,
                       help="the queue: the SQLite file or postgresql:// URL the agents' QueueApprover uses")
    group.add_argument("--reason", default="", help="why (approve, deny); a denial's reason is shown to the model")
    group.add_argument("--reviewer", metavar="NAME", help="who decides (default: cli:<login name>)")
    group.add_argument("--all", action="store_true", help="list: decided requests too, not only pending ones")
    group.add_argument("--watch", action="store_true", help="list: then follow new requests, one line each")
    web = parser.add_argument_group("serve")
    web.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    web.add_argument("--port", type=_PORT, default=8765, help="port to listen on (default 8765; 0: any free port)")
    web.add_argument("--tokens", metavar="FILE",
                     help="reviewer tokens, 'NAME TOKEN' per line (default: $MCP_BRIDGE_REVIEWERS)")


def _login() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "operator"


def _request_id(ctx: Context) -> int:
    raw = ctx.operands.get("id")
    action = ctx.operands.get("action", "list")
    if raw is None:
        raise ConfigError(f"'approvals {action}' needs the request's ID (see 'mcp-bridge approvals list')")
    try:
        return int(raw.lstrip("#"))
    except ValueError:
        raise ConfigError(f"not a request ID: {raw!r} (IDs are numbers, as 'mcp-bridge approvals list' "
                          "shows)") from None


async def run(ctx: Context) -> ExitCode:
    """Do the action on the store named by ``--store``.

    Raises:
        ConfigError: an unknown action, a missing or malformed ID, or bad serve options.
        UnknownRequest, AlreadyDecided: nothing to decide under that ID.
        StoreUnavailable: the store cannot be opened.
    """
    from ...approvals import open_approval_store
    from ...audit.postgres import password_values

    action = ctx.operands.get("action", "list")
    if action not in _ACTIONS:
        raise ConfigError(f"unknown approvals action {action!r}; use {', '.join(_ACTIONS)}")
    if action in ("list", "serve") and "id" in ctx.operands:
        raise ConfigError(f"'approvals {action}' takes no ID")
    ctx.out.mask.add(password_values(ctx.args.store))
    store = open_approval_store(ctx.args.store, create=False)
    try:
        if action == "list":
            return await _list(ctx, store)
        if action == "show":
            return await _show(ctx, store, _request_id(ctx))
        if action == "serve":
            return await _serve(ctx, store)
        request = await store.decide(_request_id(ctx), action == "approve",
                                     ctx.args.reviewer or f"cli:{_login()}", ctx.args.reason)
        if ctx.out.json_mode:
            ctx.out.json(request.to_json())
        else:
            ctx.out.print(ctx.out.line(f"{request.status} #{request.id}: {_who(request)} {request.server}/"
                                       f"{request.tool}"), soft_wrap=True)
        return ExitCode.OK
    finally:
        await store.aclose()


def _who(request: ApprovalRequest) -> str:
    return f"agent {request.agent}" if request.agent else "the server itself"


def _arguments(request: ApprovalRequest) -> str:
    text = json.dumps(dict(request.arguments), ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= _ARGUMENTS_SHOWN else text[:_ARGUMENTS_SHOWN] + "…"


def _age(seconds: float) -> str:
    spent = max(0, int(time.time() - seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if spent >= size:
            return f"{spent // size}{unit}"
    return f"{spent}s"


def _table(ctx: Context, requests: list[ApprovalRequest], title: str) -> Table:
    from rich import box
    from rich.table import Table

    # Fixed narrow columns and one elastic one, so the table fits 80 columns; every cell is
    # built by Output.line (masked, one line, controls escaped).
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, expand=False)
    table.add_column("id", justify="right", no_wrap=True, min_width=3)
    table.add_column("status", no_wrap=True, min_width=9)
    table.add_column("age", justify="right", no_wrap=True, min_width=4)
    table.add_column("agent", no_wrap=True, max_width=12, overflow="ellipsis")
    table.add_column("tool", no_wrap=True, max_width=20, overflow="ellipsis")
    table.add_column("arguments", ratio=1, no_wrap=True, overflow="ellipsis", min_width=10)
    for r in requests:
        dup = f"dup of #{r.duplicate_of} " if r.duplicate_of else ""
        table.add_row(str(r.id), r.shown_status, _age(r.created), ctx.out.line(r.agent or "-"),
                      ctx.out.line(f"{r.server}/{r.tool}"), ctx.out.line(dup + _arguments(r)))
    if not ctx.out.piped:
        # Arguments wider than the room left would make rich squeeze the other no-wrap columns to
        # nothing, the id (which every other action needs) with them: they get only that room.
        console = ctx.out.out
        others = sum(table._measure_column(console, console.options, c).maximum for c in table.columns[:-1])
        table.columns[-1].max_width = max(10, console.width - table._extra_width - others)
    return table


async def _list(ctx: Context, store: ApprovalStore) -> ExitCode:
    # Pending: the oldest (they expire first); --all: the newest. Both oldest first on screen.
    if ctx.args.all:
        requests = list(reversed(await store.list(limit=_LISTED + 1)))
        more, requests = len(requests) > _LISTED, requests[-_LISTED:]
    else:
        pending: tuple[Status] = ("pending",)
        requests = await store.list(statuses=pending, limit=_LISTED + 1, oldest_first=True)
        more, requests = len(requests) > _LISTED, requests[:_LISTED]
    if more:
        ctx.out.note(f"more than {_LISTED} requests: the {_LISTED} " + ("newest are listed" if ctx.args.all else
                     "oldest pending are listed (they expire first); decide them to see the rest"))
    if ctx.out.json_mode and not ctx.args.watch:
        ctx.out.json([r.to_json() for r in requests])
        return ExitCode.OK
    if ctx.args.watch:
        return await _watch(ctx, store, requests)
    if not requests:
        ctx.out.note("no pending approval requests" if not ctx.args.all else "no approval requests")
        return ExitCode.OK
    ctx.out.print_table(_table(ctx, requests, f"{len(requests)} request{'s' if len(requests) != 1 else ''}"))
    return ExitCode.OK


def _one_line(ctx: Context, request: ApprovalRequest) -> None:
    if ctx.out.json_mode:
        ctx.out.json(request.to_json())
        return
    dup = f" (possible duplicate of #{request.duplicate_of})" if request.duplicate_of else ""
    ctx.out.print(ctx.out.line(f"#{request.id} {request.shown_status} {request.agent or '-'} "
                               f"{request.server}/{request.tool}{dup} {_arguments(request)}"), soft_wrap=True)
    ctx.out.out.file.flush()


async def _watch(ctx: Context, store: ApprovalStore, shown: list[ApprovalRequest]) -> ExitCode:
    """Print the requests, then each new one as it arrives, until interrupted."""
    import anyio

    last = max((r.id for r in shown), default=0)
    for request in shown:
        _one_line(ctx, request)
    while True:
        for request in await store.list(after=last, limit=_LISTED, oldest_first=True):
            _one_line(ctx, request)
            last = max(last, request.id)
        await anyio.sleep(_WATCH_INTERVAL)


async def _show(ctx: Context, store: ApprovalStore, request_id: int) -> ExitCode:
    from ...sanitize import framed

    request = await store.get(request_id)
    if ctx.out.json_mode:
        ctx.out.json(request.to_json())
        return ExitCode.OK
    out = ctx.out
    rows = [("request", f"#{request.id} {request.shown_status}"), ("agent", request.agent or "(the server itself)"),
            ("server", request.server), ("tool", request.tool + (f" (called as {request.alias})"
                                                                  if request.alias != request.tool else "")),
            ("hints", json.dumps(dict(request.hints), sort_keys=True) if request.hints else "none"),
            ("why", request.why), ("asked", f"{_iso(request.created)} by {request.worker}"),
            ("expires", _iso(request.expires))]
    if request.duplicate_of:
        rows.append(("duplicate", await _duplicate_note(store, request.duplicate_of)))
    if request.status != "pending":
        rows += [("decided", f"{_iso(request.decided)} by {request.reviewer or '-'}"), ("reason", request.reason or "")]
    if request.consumed:
        rows.append(("used", _iso(request.consumed)))
    for label, value in rows:
        out.print(out.line(f"{label + ':':<10} {value}"), soft_wrap=True)
    args = json.dumps(dict(request.arguments), indent=2, ensure_ascii=False, sort_keys=True, default=str)
    out.print(out.line("arguments (as the model wrote them, secrets masked):"), soft_wrap=True)
    # Behind a gutter: no row of the model's text can pose as one of ours.
    out.print(out.text(framed(out.mask(args), out.out.width)), soft_wrap=True)
    return ExitCode.OK


async def _duplicate_note(store: ApprovalStore, other_id: int) -> str:
    from ...approvals import UnknownRequest

    try:
        other = await store.get(other_id)
    except UnknownRequest:
        return f"possible duplicate of #{other_id}"
    decided = f", {other.status} by {other.reviewer}" if other.reviewer else f", {other.shown_status}"
    return f"possible duplicate of #{other.id}: proposed by {other.agent or 'the server'}{decided}"


def _iso(seconds: float | None) -> str:
    from ...approvals.requests import iso

    return iso(seconds)


async def _serve(ctx: Context, store: ApprovalStore) -> ExitCode:
    import socket

    import uvicorn

    from ...approvals.web import Reviewers, create_app
    from ...audit.postgres import password_values

    reviewers = Reviewers.load(ctx.args.tokens)
    ctx.out.mask.add(reviewers.values())
    await store.list(limit=1)  # a store that cannot be opened fails here, not on the first page view
    try:
        sock = socket.create_server((ctx.args.host, ctx.args.port))
    except OSError as e:
        raise ConfigError(f"cannot listen on {ctx.args.host}:{ctx.args.port}: {e.strerror}") from None
    host, port = sock.getsockname()[:2]
    if ctx.args.host not in ("127.0.0.1", "::1", "localhost"):
        ctx.out.note("warning: the page is reachable from other machines; tokens travel in clear without TLS "
                     "(put it behind an HTTPS proxy)")
    app = create_app(store, reviewers, secrets=password_values(ctx.args.store))
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    ctx.out.note(f"LISTENING http://{host}:{port}/ (approvals in {store.location}; Ctrl-C stops)")
    ctx.out.err.file.flush()
    await uvicorn.Server(config).serve(sockets=[sock])
    return ExitCode.OK


COMMAND = Command(
    name="approvals",
    summary="list, show, approve or deny queued approval requests, or serve a page to decide them",
    description="The approval queue agents wait on (QueueApprover): 'list' the pending requests (--all: every "
                "one; --watch: then follow new ones), 'show ID' one in full, 'approve ID' or 'deny ID' with "
                "--reason, or 'serve' a web page for reviewers (tokens: --tokens FILE or $MCP_BRIDGE_REVIEWERS). "
                "--store is the SQLite file or postgresql:// URL the agents use.",
    operands=("[action]", "[id]"),
    add_arguments=_add_arguments,
    run=run,
    uses_server=False,
    operand_help="ACTION: list (the default), show, approve, deny or serve; ID: the request, for show, approve "
                 "and deny",
    exits=(ExitCode.OK, ExitCode.USAGE, ExitCode.AUTH, ExitCode.UNREACHABLE, ExitCode.INTERRUPTED),
)
