"""An email team on AutoGen's distributed gRPC runtime: one host, two worker processes, one audit table.

One command starts everything on 127.0.0.1 and stops it all at the end:

* a gRPC host through which every message travels;
* worker ``w1`` runs ``triage``; worker ``w2`` runs ``drafter`` and ``contacts``. Each agent is an
  ``AssistantAgent`` loaded from a component config whose ``MCPWorkbench`` carries every guard:
  the agent's name, its tool selection, the approval policy and the audit log. The configs hold
  no secret: each agent's MultiMail key and the audit database's password are ``${VAR}``
  references filled from the worker's environment;
* the MultiMail stand-in over Streamable HTTP, each agent with a key of its own, so the server's
  own audit log names the agent behind every call;
* a PostgreSQL audit trail shared by both workers (a throwaway server of its own, or ``--audit URL``);
* the agents' model: a scripted OpenAI-compatible server (``fixtures/openai_compat.py``), or a real
  one when ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` is set.

Triage reads the new mail and hands over to the drafter on the other worker; the drafter's reply
lands in MultiMail's ``gated_send`` queue; contacts files the customer. The operator (this process,
holding the oversight key) sees the held reply and approves it; ``wait_for_decision`` sees it go.

    python examples/distributed_team.py                  # everything, offline
    python examples/distributed_team.py --interactive    # you are the operator
    python examples/distributed_team.py --audit postgresql://user@db.internal/audit
    python examples/distributed_team.py --approvals approvals.db   # each flagged call waits in the queue

With ``--approvals FILE|postgresql://...`` every call the approval policy flags (the drafter's
reply, the new contact) waits on that durable queue, whichever worker makes it; a scripted
reviewer approves each through the CLI (``mcp-bridge approvals approve ID``), or, with
``--wait-for-reviewer``, you do (``mcp-bridge approvals list|serve --store ...``). Without it, the
policy's approvals are given automatically and the audit trail is the control.

The host, the workers and the ``Coordinator`` this program drives are ``bridge.autogen.distributed``;
they also run on their own, on as many machines as you like::

    python -m bridge.autogen.distributed host --port 50051
    python -m bridge.autogen.distributed worker --host HOST:50051 --name w1 --agents triage --components agents.json

Needs ``pip install -e ".[grpc,postgres,openai]"`` and, unless ``--audit`` names a server, PostgreSQL's
programs for the throwaway one (``make postgres``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

# _mailroom also puts the repo root on sys.path.
from _mailroom import CUSTOMER, CUSTOMER_NAME, cli_reviewer, live, quiet_interrupts, receive_new_mail

from bridge.audit import query as query_audit
from bridge.audit import render_table
from bridge.autogen.distributed import Coordinator, Report
from fixtures.mail_team import (
    add_agent_keys,
    build_components,
    mail_proc,
    model_at,
    operate,
    scripts,
    server_log,
    worker_env,
)
from fixtures.processes import Proc, address, host_proc, ready, stop_all, worker_proc

LAYOUT = {"w1": ["triage"], "w2": ["drafter", "contacts"]}
CHAIN = ["triage", "drafter", "contacts"]


def _live_model() -> dict[str, Any]:
    model = os.environ.get("OPENAI_MODEL", "gpt-4o-mini")
    if os.environ.get("OPENAI_BASE_URL"):
        return model_at(os.environ["OPENAI_BASE_URL"], model)
    return {"model": model}


def _queued_reply(reports: Sequence[Report]) -> str:
    for report in reports:
        for use in report.tools:
            if use.tool == "reply_email" and not use.is_error:
                return str(json.loads(use.result)["id"])
    raise SystemExit("the drafter did not queue a reply")


async def _work_the_mail(host: str, mail_url: str, drafter_key: str, audit: str, *, interactive: bool,
                         approvals: str | None = None, script_reviewer: bool = True) -> None:
    """The team's run across both workers, then the operator's decision on the held reply."""
    async with Coordinator(host) as team:
        await team.wait_for(LAYOUT)
        placed = {a: w for w, agents in LAYOUT.items() for a in agents}
        if approvals:
            print(f"Approval requests wait in {approvals} ('mcp-bridge approvals list --store ...').", flush=True)
        scripted = asyncio.ensure_future(cli_reviewer(approvals, "team-lead")) if approvals and script_reviewer \
            else None
        try:
            reports = await team.run_chain(CHAIN, "Work the new mail in the support inbox.")
        finally:
            if scripted is not None:
                scripted.cancel()
                await asyncio.gather(scripted, return_exceptions=True)
        print()
        for report in reports:
            tools = ", ".join(u.tool for u in report.tools) or "no tools"
            print(f"[{report.agent} on {report.worker}] ({tools}) {report.error or report.text}")
            assert report.worker == placed[report.agent]
        reply_id = _queued_reply(reports)
        print(f"\nReply {reply_id} is held in MultiMail's gated_send queue for the operator.\n")
        await operate(mail_url, reply_id, drafter_key, audit, interactive=interactive)


async def run_team(workdir: Path, audit: str, *, interactive: bool, approvals: str | None = None,
                   script_reviewer: bool = True) -> None:
    """Everything: the stand-in, the model, the host, the workers; the team's run; the operator; the trail."""
    from fixtures.openai_compat import ScriptedModel

    db = workdir / "mail.db"
    email = receive_new_mail(db)
    keys = add_agent_keys(db)
    print(f"New mail from {CUSTOMER_NAME}: {email['id']} in {email['thread_id']}")
    os.environ.setdefault("MCP_BRIDGE_WORKER", "operator")
    procs: list[Proc] = []
    with contextlib.ExitStack() as stack:
        if live():
            model, model_key = _live_model(), os.environ.get("OPENAI_API_KEY", "not-needed")
        else:
            scripted = stack.enter_context(ScriptedModel(scripts(email["id"], email["thread_id"])))
            model, model_key = model_at(scripted.base_url), "offline"
        try:
            # Started side by side: each process spends seconds importing before it listens.
            mail, host_process = mail_proc(db), host_proc()
            procs += [mail, host_process]
            mail_url, host = address(mail), address(host_process)
            dump = workdir / "agents.json"
            dump.write_text(json.dumps(build_components(audit, model, approvals), indent=1))
            assert not [k for k in keys.values() if k in dump.read_text()], "a MultiMail key reached the configs"
            print(f"Component configs: {dump} (no secrets: keys and passwords are ${{VAR}} references)")
            print(f"gRPC host on {host}")
            # The configs name the audit password as a reference; each worker gets the value.
            password = urlsplit(audit).password
            workers = {name: worker_proc(host, name, agents, dump, worker_env(agents, keys, mail_url,
                                                                              model_key=model_key,
                                                                              audit_password=password))
                       for name, agents in LAYOUT.items()}
            procs += workers.values()
            for name, proc in workers.items():
                ready(proc)
                print(f"worker {name}: {', '.join(LAYOUT[name])}")
            await _work_the_mail(host, mail_url, keys["drafter"], audit, interactive=interactive,
                                 approvals=approvals, script_reviewer=script_reviewer)
        finally:
            # Workers first (they leave the host), then the host and the mail server.
            stop_all([p for p in procs if p.name.startswith("worker")])
            stop_all([p for p in procs if not p.name.startswith("worker")])
    _show_what_happened(db, audit)


def _show_what_happened(db: Path, audit: str) -> None:
    from rich.console import Console

    from fixtures.multimail.seed import open_store

    store = open_store(db)
    try:
        for sent in store.outbox(CUSTOMER):
            print(f"\nDelivered to {sent['recipient']}: {sent['subject']!r}")
    finally:
        store.close()
    print("\nThe mail server's own log (the key behind each call names the agent):")
    for key_name, action, outcome in server_log(db):
        print(f"  {key_name:>16}  {action:<16} {outcome}")
    records = query_audit(audit)
    Console(width=150).print(render_table(records, title=f"audit trail ({len(records)} calls, PostgreSQL)"))


def _throwaway_postgres(stack: contextlib.ExitStack) -> str:
    from fixtures.postgres import PostgresUnavailable, temp_postgres

    try:
        return stack.enter_context(temp_postgres()).url()
    except PostgresUnavailable as e:
        raise SystemExit(f"distributed_team: {e}; or pass --audit postgresql://...") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--audit", metavar="URL", help="a postgresql:// URL (default: a throwaway server)")
    parser.add_argument("--workdir", type=Path, help="keep mail.db and agents.json here (default: a temp dir)")
    parser.add_argument("--interactive", action="store_true", help="decide on the held reply yourself")
    parser.add_argument("--approvals", metavar="FILE|URL",
                        help="flagged calls wait on this approval queue (a SQLite file or postgresql:// URL)")
    parser.add_argument("--wait-for-reviewer", action="store_true",
                        help="with --approvals: script no reviewer; decide with 'mcp-bridge approvals'")
    args = parser.parse_args(argv)
    folder = args.workdir or Path(tempfile.mkdtemp(prefix="distributed-team-"))
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        audit = args.audit or _throwaway_postgres(stack)
        approvals = str(Path(args.approvals).resolve()) if args.approvals and "://" not in args.approvals \
            else args.approvals
        quiet_interrupts()
        try:
            asyncio.run(run_team(folder, audit, interactive=args.interactive, approvals=approvals,
                                 script_reviewer=not args.wait_for_reviewer))
        except KeyboardInterrupt:
            print("distributed_team: interrupted", file=sys.stderr)
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
