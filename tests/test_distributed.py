"""Agents on AutoGen's distributed gRPC runtime: real processes on 127.0.0.1, one PostgreSQL audit table.

A gRPC host, two worker processes loading their agents from component configs, the MultiMail
stand-in over Streamable HTTP (each agent with a key of its own, so the server's own audit log
names the agent behind each call), a scripted OpenAI-compatible model and a PostgreSQL server of
the module's own. The host, the workers and the coordinator are ``bridge.autogen.distributed``;
the team they serve is ``fixtures.mail_team`` (the example's); the tests drive them and read both
audit logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from helpers import ROOT

from bridge.audit import AuditRecord, verify_log
from bridge.audit import query as query_audit
from bridge.autogen.distributed import Coordinator
from fixtures.mail_team import (
    ROLES,
    add_agent_keys,
    build_components,
    mail_proc,
    model_at,
    operate,
    scripts,
    server_log,
    worker_env,
)
from fixtures.mailroom import CUSTOMER, CUSTOMER_NAME, REPLY, receive_new_mail
from fixtures.openai_compat import ScriptedModel
from fixtures.postgres import PostgresUnavailable, TempPostgres
from fixtures.processes import Proc, address, host_proc, ready, stop_all, worker_proc

# Processes start slowly on a loaded 2-core machine; the module fixture alone can take a minute.
pytestmark = [pytest.mark.anyio, pytest.mark.timeout(400)]

DEAD_AFTER = 5.0
"""Seconds of heartbeat silence before the coordinator takes a worker as dead (generous: a busy
2-core machine can starve a healthy worker's heartbeat for a second or two)."""


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    # One event loop for the module: the coordinator's gRPC channel lives across tests.
    return "asyncio"


class SlowLink:
    """A TCP relay that can hold the server's answers back: a worker behind it has its calls
    reach the server at once while their results are still on the way."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.delay = 0.0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, answers: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if answers and self.delay:
                    time.sleep(self.delay)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def close(self) -> None:
        self._closed = True
        self._listener.close()


@dataclass
class Cluster:
    host: str
    audit: str
    db: Path
    mail_url: str
    keys: dict[str, str]
    email: dict[str, str]
    model: ScriptedModel
    workers: dict[str, Proc]
    link: SlowLink
    components: dict[str, dict[str, object]]


LAYOUT = {"w1": (["triage", "contacts"], ["triage"]), "w2": (["drafter", "contacts"], ["drafter", "contacts"])}
"""worker -> (agents it takes single calls for, agents it runs in team runs). ``contacts`` runs on both."""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("distributed")
    db = workdir / "mail.db"
    email = receive_new_mail(db)
    keys = add_agent_keys(db)
    postgres = TempPostgres()
    try:
        postgres.start()
    except PostgresUnavailable as e:
        pytest.fail(f"PostgreSQL for the distributed tests: {e}", pytrace=False)
    procs: list[Proc] = []
    workers: dict[str, Proc] = {}
    model = ScriptedModel(scripts(email["id"], email["thread_id"])).start()
    link: SlowLink | None = None
    try:
        mail, host = mail_proc(db), host_proc()
        procs += [mail, host]
        mail_url, host_address = address(mail), address(host)
        mail_port = int(mail_url.split(":")[2].split("/")[0])
        link = SlowLink(("127.0.0.1", mail_port))
        components = build_components(postgres.url(), model_at(model.base_url))
        dump = workdir / "agents.json"
        dump.write_text(json.dumps(components))
        urls = {"w1": mail_url, "w2": mail_url.replace(f":{mail_port}/", f":{link.port}/")}
        workers.update({name: worker_proc(host_address, name, agents, dump,
                                          worker_env(agents, keys, urls[name], model_key="offline"), team=team)
                        for name, (agents, team) in LAYOUT.items()})
        procs += workers.values()
        for proc in workers.values():
            ready(proc)
        yield Cluster(host_address, postgres.url(), db, mail_url, keys, email, model, workers, link, components)
    finally:
        # Workers a test restarted are in `workers` only.
        stop_all(list({id(p): p for p in [*procs, *workers.values()] if p.name.startswith("worker")}.values()))
        stop_all([p for p in procs if not p.name.startswith("worker")])
        if link is not None:
            link.close()
        model.stop()
        postgres.stop()


@pytest.fixture(scope="module")
async def team(cluster: Cluster) -> AsyncIterator[Coordinator]:
    async with Coordinator(cluster.host, dead_after=DEAD_AFTER) as coordinator:
        await coordinator.wait_for(LAYOUT, timeout=60)
        yield coordinator


def trail(cluster: Cluster, *workers: str) -> list[AuditRecord]:
    return [r for r in query_audit(cluster.audit) if not workers or r.worker in workers]


def calls_by(cluster: Cluster) -> Counter[tuple[str, str]]:
    """(key name, tool) -> calls the server ran (refusals included), from the server's own log."""
    return Counter((key, tool) for key, tool, _ in server_log(cluster.db) if key in ROLES)


def test_the_workers_load_configs_carrying_every_guard_and_no_secret(cluster: Cluster) -> None:
    text = json.dumps(cluster.components)
    assert not [k for k in cluster.keys.values() if k in text]
    for name, role in ROLES.items():
        bench = cluster.components[name]["workbench"]["config"]  # type: ignore[index]
        assert bench["agent"] == name
        assert bench["servers"][0]["target"]["headers"] == {"Authorization": f"Bearer ${{{role.key_var}}}"}
        assert bench["guards"]["select"]["include"] == list(role.tools)
        assert "decide_email" in bench["guards"]["select"]["opt_in"]  # account tools stay out
        audit, approval = bench["guards"]["chain"]
        assert audit == {"kind": "audit", "log": {"type": "postgres", "url": cluster.audit}}
        assert approval["approver"] == {"type": "auto_approve", "reviewer": f"policy:{name}"}
        # The agent's own config holds the same workbench.
        agent = cluster.components[name]["agent"]["config"]  # type: ignore[index]
        assert agent["name"] == name and agent["workbench"][0]["config"] == bench


async def test_a_team_run_crosses_workers_and_is_audited_once_per_call(cluster: Cluster,
                                                                      team: Coordinator) -> None:
    before_server = calls_by(cluster)
    reports = await team.run_chain(["triage", "drafter", "contacts"], "Work the new mail in the support inbox.")
    assert [(r.agent, r.worker, r.error) for r in reports] == [
        ("triage", "w1", None), ("drafter", "w2", None), ("contacts", "w2", None)]
    # The drafter on w2 was given what triage on w1 said: the message went through the host.
    drafter_prompt = json.dumps([m for ex in cluster.model.exchanges if ex.key == "drafter"
                                 for m in ex.body["messages"]])
    assert f"triage says: New customer {CUSTOMER_NAME}" in drafter_prompt
    assert not cluster.model.ran_out and not cluster.model.errors

    used = [(r.agent, u.tool, u.is_error) for r in reports for u in r.tools]
    assert sorted(used) == sorted([("triage", "check_inbox", False), ("triage", "get_thread", False),
                                   ("drafter", "reply_email", False), ("contacts", "search_contacts", False),
                                   ("contacts", "add_contact", False)])
    reply = json.loads(next(u.result for r in reports for u in r.tools if u.tool == "reply_email"))
    assert reply["status"] == "pending_send_approval"  # held by gated_send for the operator

    # The server saw each call once, under the key of the agent that made it.
    assert calls_by(cluster) - before_server == Counter({("triage", "check_inbox"): 1, ("triage", "get_thread"): 1,
                                                         ("drafter", "reply_email"): 1,
                                                         ("contacts", "search_contacts"): 1,
                                                         ("contacts", "add_contact"): 1})
    # The audit table: one record per call, from the worker that made it, guards as configured.
    records = trail(cluster, "w1", "w2")
    assert sorted((r.worker, r.agent, r.tool, r.outcome) for r in records) == sorted([
        ("w1", "triage", "check_inbox", "ok"), ("w1", "triage", "get_thread", "ok"),
        ("w2", "drafter", "reply_email", "ok"), ("w2", "contacts", "search_contacts", "ok"),
        ("w2", "contacts", "add_contact", "ok")])
    by_tool = {r.tool: r for r in records}
    assert (by_tool["reply_email"].decision, by_tool["reply_email"].reviewer) == ("approved", "policy:drafter")
    assert by_tool["check_inbox"].decision == "not_required"
    assert by_tool["reply_email"].arguments == {"email_id": cluster.email["id"], "markdown": REPLY}
    assert len({r.record_id for r in records}) == len(records)
    text = json.dumps([r.to_json() for r in trail(cluster)])
    assert not [k for k in cluster.keys.values() if k in text]

    # The operator approves; the workflow waiting on the decision sees the reply go out.
    status = await operate(cluster.mail_url, reply["id"], cluster.keys["drafter"], cluster.audit,
                              interactive=False)
    assert status == "sent"


async def test_single_calls_on_both_workers_each_leave_one_record(cluster: Cluster, team: Coordinator) -> None:
    before = {r.record_id for r in trail(cluster)}
    jobs = [("w1", "triage", "check_inbox", {"limit": 2}), ("w2", "drafter", "get_thread",
                                                              {"thread_id": cluster.email["thread_id"]})] * 6
    jobs += [(w, "contacts", "search_contacts", {"query": f"nobody-{w}-{n}"}) for n in range(4) for w in ("w1", "w2")]
    outcomes = await asyncio.gather(*(team.call(agent, tool, args, worker=w) for w, agent, tool, args in jobs))
    assert [(o.worker, o.attempts, o.lost, o.is_error) for o in outcomes] == [(w, 1, False, False) for w, *_ in jobs]
    # A loaded worker keeps its agent's selection: a tool triage was not given never reaches the server.
    server_before = calls_by(cluster)
    refused = await team.call("triage", "reply_email", {"email_id": cluster.email["id"], "markdown": "hi"},
                              worker="w1")
    assert refused.is_error and "unknown tool 'reply_email'" in refused.text and refused.worker == "w1"
    assert calls_by(cluster) == server_before
    new = [r for r in trail(cluster) if r.record_id not in before]
    # The refused attempt is on the trail, under the worker and agent that made it.
    (attempt,) = [r for r in new if r.outcome == "refused"]
    assert (attempt.worker, attempt.agent, attempt.tool, attempt.reason) == \
        ("w1", "triage", "reply_email", "tool outside the agent's selection")
    new = [r for r in new if r.outcome != "refused"]
    assert len(new) == len(jobs)
    # The coordinator's job id travels as the call id: each job has exactly its one record.
    by_job = {r.call_id: r for r in new}
    assert len(by_job) == len(jobs)
    for outcome, (worker, agent, tool, args) in zip(outcomes, jobs, strict=True):
        r = by_job[outcome.job]
        assert (r.worker, r.agent, r.tool, r.arguments) == (worker, agent, tool, args)


async def test_a_call_no_worker_can_make_is_lost_with_the_reason_and_never_reaches_the_server(
        cluster: Cluster, team: Coordinator) -> None:
    server_before = calls_by(cluster)
    nobody = await team.call("billing", "check_inbox", {"limit": 1})
    assert (nobody.lost, nobody.attempts, nobody.workers, nobody.worker) == (True, 0, [], None)
    assert nobody.reason == "no live worker serves billing"
    # w1 does not serve the drafter: it answers that it cannot, and the call is not sent elsewhere.
    elsewhere = await team.call("drafter", "get_thread", {"thread_id": cluster.email["thread_id"]}, worker="w1")
    assert (elsewhere.lost, elsewhere.attempts, elsewhere.workers) == (True, 1, ["w1"])
    assert elsewhere.reason == "worker w1: no agent 'drafter' here"
    assert calls_by(cluster) == server_before


async def test_heartbeats_name_each_workers_agents_and_their_retry_safe_tools(cluster: Cluster,
                                                                             team: Coordinator) -> None:
    assert sorted(team.alive()) == ["w1", "w2"] and sorted(team.alive("contacts")) == ["w1", "w2"]
    assert team.alive("drafter") == ["w2"]
    w1 = team.workers["w1"]
    assert w1.agents == ["triage", "contacts"]
    # From the stand-in's annotations: reads may be sent again, adding a contact may not.
    assert {"check_inbox", "get_thread", "read_email"} <= set(w1.retry_safe["triage"])
    assert "search_contacts" in w1.retry_safe["contacts"] and "add_contact" not in w1.retry_safe["contacts"]
    assert "reply_email" not in team.workers["w2"].retry_safe["drafter"]


async def test_a_killed_worker_leaves_the_other_working_and_the_audit_consistent(cluster: Cluster,
                                                                                team: Coordinator) -> None:
    tag = uuid.uuid4().hex[:8]
    lookup = {"query": f"lookup-{tag}"}                          # search_contacts: read-only, idempotent
    new_contact = {"name": f"Ana {tag}", "email": f"ana.{tag}@new.example"}  # add_contact: neither
    before = {r.record_id for r in trail(cluster)}
    log_before = len(server_log(cluster.db))

    # w2's answers are held on the wire: its two calls reach the server, their results never reach w2.
    cluster.link.delay = 30.0
    searching = asyncio.ensure_future(team.call("contacts", "search_contacts", lookup, worker="w2"))
    adding = asyncio.ensure_future(team.call("contacts", "add_contact", new_contact, worker="w2"))
    deadline = time.monotonic() + 60
    while {"search_contacts", "add_contact"} - {tool for key, tool, _ in server_log(cluster.db)[log_before:]
                                                 if key == "contacts"}:
        assert time.monotonic() < deadline, "w2's calls never reached the server"
        await asyncio.sleep(0.1)
    cluster.workers["w2"].kill()

    # w1 keeps working while w2 is dead, before and after the coordinator notices.
    meanwhile = await asyncio.gather(*(team.call("triage", "check_inbox", {"limit": 1}) for _ in range(5)))
    assert [(o.worker, o.lost, o.is_error) for o in meanwhile] == [("w1", False, False)] * 5
    searched, added = await asyncio.wait_for(asyncio.gather(searching, adding), DEAD_AFTER + 60)
    assert team.alive() == ["w1"]
    later = await team.call("contacts", "search_contacts", {"query": f"after-{tag}"})
    assert (later.worker, later.lost) == ("w1", False)

    # The idempotent call was sent again, to w1; the other was not, and says why.
    assert (searched.worker, searched.attempts, searched.workers, searched.lost) == ("w1", 2, ["w2", "w1"], False)
    assert added.lost and added.workers == ["w2"] and "not sent again" in added.reason
    assert "add_contact" in added.reason

    # The server ran the search twice (w2's, then w1's) and the new contact once: never re-sent.
    ran = server_log(cluster.db)[log_before:]
    assert [t for k, t, _ in ran if k == "contacts"].count("add_contact") == 1
    assert [t for k, t, _ in ran if k == "contacts"].count("search_contacts") == 3  # lookup x2, then `later`
    with psycopg.connect(cluster.audit) as conn:
        torn = conn.execute("SELECT count(*) FROM tool_calls WHERE record_id IS NULL OR outcome IS NULL").fetchone()
    assert torn == (0,)
    # The audit table: one record per call that finished, from the worker that finished it; w2
    # died before its two calls returned: each left the record written before it was sent, with
    # no outcome (the server's own log has them), and every writer's hash chain is intact.
    new = [r for r in trail(cluster) if r.record_id not in before]
    finished = [*meanwhile, searched, later]
    assert sorted((r.call_id, r.worker) for r in new if not r.open) == sorted((o.job, o.worker) for o in finished)
    assert sorted((r.worker, r.call_id, r.tool, r.outcome) for r in new if r.open) == sorted([
        ("w2", searched.job, "search_contacts", "started"), ("w2", added.job, "add_contact", "started")])
    assert {r.record_id for r in query_audit(cluster.audit, open_only=True)} >= {r.record_id for r in new if r.open}
    assert all(r.outcome == "ok" for r in new if not r.open)
    assert verify_log(cluster.audit).intact

    # A restarted w2 rejoins through the host and serves calls again, audited under its name.
    cluster.link.delay = 0.0
    dump = cluster.db.parent / "agents-rejoin.json"
    dump.write_text(json.dumps(cluster.components))
    agents, team_agents = LAYOUT["w2"]
    url = cluster.mail_url.replace(f":{cluster.mail_url.split(':')[2].split('/')[0]}/", f":{cluster.link.port}/")
    cluster.workers["w2"] = ready(worker_proc(cluster.host, "w2", agents, dump,
                                                    worker_env(agents, cluster.keys, url, model_key="offline"),
                                                    team=team_agents))
    await team.wait_for(["w2"], timeout=60)
    back = await team.call("contacts", "search_contacts", {"query": f"back-{tag}"}, worker="w2")
    assert (back.worker, back.lost, back.is_error) == ("w2", False, False)
    assert [(r.worker, r.agent, r.tool) for r in trail(cluster, "w2") if r.call_id == back.job] == [
        ("w2", "contacts", "search_contacts")]


def test_the_example_runs_everything_and_stops_it_all(tmp_path: Path) -> None:
    import os
    import subprocess

    import psutil

    # Every process the run starts inherits this, so any left behind can be found afterwards.
    mark = uuid.uuid4().hex
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    done = subprocess.run([sys.executable, str(ROOT / "examples" / "distributed_team.py"), "--workdir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=360, env={**env, "RUN_MARK": mark})
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for line in ("[triage on w1]", "[drafter on w2]", "[contacts on w2]", "held in MultiMail's gated_send queue",
                 "wait_for_decision: sent (approved=True)", f"Delivered to {CUSTOMER}", "audit trail (7 calls"):
        assert line in out, line
    assert "mm_test_" not in out + done.stderr

    def marked(p: psutil.Process) -> bool:
        try:
            return p.environ().get("RUN_MARK") == mark
        except (psutil.Error, OSError):
            return False

    # Workers, host, mail server and database: none outlives the run.
    assert not [p.pid for p in psutil.process_iter() if marked(p)]


def test_a_worker_whose_host_vanishes_exits_so_a_supervisor_can_start_another(cluster: Cluster) -> None:
    dump = cluster.db.parent / "agents-lonely.json"
    dump.write_text(json.dumps(cluster.components))
    procs = [host_proc()]
    try:
        procs.append(worker_proc(address(procs[0]), "w9", ["triage"], dump,
                                 worker_env(["triage"], cluster.keys, cluster.mail_url, model_key="offline"),
                                 host_timeout=3))
        host, worker = procs
        ready(worker)
        host.kill()
        worker.wait_for("stopped relaying messages", timeout=60)
        assert worker.popen.wait(timeout=60) == 1  # on its own, not told to
        assert "w9: the host at" in worker.tail()
    finally:
        stop_all(procs)


def test_a_worker_refuses_agents_its_component_file_lacks_in_one_line(cluster: Cluster, tmp_path: Path) -> None:
    dump = tmp_path / "agents.json"
    dump.write_text(json.dumps({"triage": cluster.components["triage"]}))
    worker = worker_proc(cluster.host, "w8", ["triage", "billing"], dump, {})
    worker.popen.wait(timeout=60)
    assert worker.stop() == 1
    assert worker.lines[-1] == ("python -m bridge.autogen.distributed worker: worker w8: no component config for "
                                "billing (the file has: triage); write one with agent_components()")


def test_importing_the_autogen_adapter_loads_neither_this_package_nor_grpc() -> None:
    import subprocess

    probe = ("import sys, bridge.autogen; print(sorted(m for m in sys.modules "
             "if m.startswith(('bridge.autogen.distributed', 'grpc', 'autogen_ext.runtimes'))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"
