"""``mcp-bridge`` as a user runs it: each command as a subprocess, over stdio, Streamable HTTP and SSE,
against the schema zoo and the MultiMail stand-in, covering every exit status and error path.

A CLI process spends ~3 s importing before it does anything, so the invocations are declared up
front (``_invocations``) and run concurrently by one module fixture; each test then checks the
outcome of its own invocation. Later stages run after earlier ones (the operator lists the reply the
agent sent in stage 1). Usage errors that never reach a server are tested in process, in
``test_cli_units.py``.
"""

from __future__ import annotations

import http.server
import io
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, http_server

from bridge.cli import main
from fixtures.multimail.seed import AGENT_KEY, INJECTION_EMAIL_ID, OPERATOR_KEY
from fixtures.schema_zoo import PNG_BYTES, WAV_BYTES, ZOO_SCHEMAS, ZOO_TOOLS

pytestmark = pytest.mark.timeout(300)

PY = sys.executable
CONFIG = ROOT / "fixtures" / "configs" / "two_servers.json"
SECRET = "sk-test-5ecret-9f8e7d6c5b4a"
"""A credential handed to the CLI by --env/--header/config; no output may ever contain it."""
ZOO = ["--env", f"PYTHONPATH={ROOT}", "--", PY, "-m", "fixtures.schema_zoo"]
"""The schema zoo over stdio; always last on a command line."""
REPLY = "Hi Maria, a replacement rain fly ships today."


@dataclass(frozen=True)
class Run:
    """One CLI invocation and what it should be given."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    stdin: str | None = None


@dataclass(frozen=True)
class Result:
    argv: list[str]
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def error_line(self) -> str:
        lines = [line for line in self.err.splitlines() if line.startswith("mcp-bridge: error: ")]
        assert len(lines) == 1, self.err
        return lines[0]

    def __str__(self) -> str:  # shown by pytest when an assertion on a Result fails
        return f"mcp-bridge {' '.join(self.argv)}\nexit {self.code}\n--- stdout\n{self.out}\n--- stderr\n{self.err}"


def run_cli(run: Run) -> Result:
    """Run ``python -m bridge.cli`` from the repo root; credentials from the caller's env never leak in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MULTIMAIL_", "BRIDGE_"))}
    env.update({"PYTHONPATH": str(ROOT), "COLUMNS": "200", **run.env})
    proc = subprocess.run([PY, "-m", "bridge.cli", *run.argv], cwd=ROOT, env=env, input=run.stdin,
                          capture_output=True, text=True, timeout=180, check=False)
    return Result(run.argv, proc.returncode, proc.stdout, proc.stderr)


class _Refuse(http.server.BaseHTTPRequestHandler):
    """An endpoint that refuses every request with 401, like a hosted server given a bad key."""

    def _refuse(self) -> None:
        self.send_response(401)
        self.send_header("WWW-Authenticate", 'Bearer realm="mcp"')
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = do_DELETE = _refuse

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def refusing_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Servers:
    zoo_http: str
    zoo_sse: str
    mail_http: str
    refusing: str
    work: Path


def _invocations(s: Servers) -> list[dict[str, Run]]:
    """The subprocess runs of this module by name, in stages (each stage after the one before).

    One run per command and transport and per exit status, so the real process boundary (entry
    point, exit status, stdout/stderr split) is covered; variants run in process further down.
    """
    exits_at_start = ("import os, sys; print('starting'); "
                      "print('fatal: token rejected:', os.environ['SERVER_TOKEN'], file=sys.stderr); sys.exit(2)")
    return [{
        "tools_stdio": Run(["tools", *ZOO]),
        "tools_http_json": Run(["tools", s.zoo_http, "--json"]),
        "tools_config_stdio_json": Run(["tools", "--config", str(CONFIG), "--server", "zoo", "--json"],
                                       {"BRIDGE_PYTHON": PY, "BRIDGE_ROOT": str(ROOT)}),
        "show_http": Run(["show", s.zoo_http, "defs_ref"]),
        "show_stdio_json": Run(["show", "keyword_args", "--json", *ZOO]),
        "call_image": Run(["call", s.zoo_http, "image_result", "--output-dir", str(s.work / "media")]),
        "call_audio_stdio": Run(["call", "audio_result", "--output-dir", str(s.work / "media"), *ZOO]),
        "call_tool_error": Run(["call", s.zoo_http, "error_result", "--arg", "message=disk on fire"]),
        "call_invalid": Run(["call", s.zoo_http, "validated_order", "--arg", "customer=a@b.example",
                             "--args", '{"items": [{"sku": "bad", "quantity": 1, "unit_price": 2}]}']),
        "call_mail_reply": Run(["call", s.mail_http, "reply_email", "--header", f"Authorization: Bearer {AGENT_KEY}",
                                "--arg", f"email_id={INJECTION_EMAIL_ID}", "--arg", f"markdown={REPLY}"]),
        "unreachable": Run(["tools", f"http://127.0.0.1:{_closed_port()}/mcp"]),
        "exits_at_start": Run(["tools", "--env", f"SERVER_TOKEN={SECRET}", "--", PY, "-c", exits_at_start]),
        "exits_at_start_debug": Run(["tools", "--debug", "--env", f"SERVER_TOKEN={SECRET}", "--", PY, "-c",
                                     exits_at_start]),
        "auth_sse": Run(["tools", f"{s.refusing}/sse", "--header", f"Authorization: Bearer {SECRET}"]),
    }, {
        # after the agent's reply: the operator, through the fixture config, with its own key
        "config_mail_pending": Run(["call", "list_pending", "--json", "--debug", "--config", str(CONFIG),
                                    "--server", "multimail"], {"MULTIMAIL_URL": s.mail_http,
                                                               "MULTIMAIL_API_KEY": OPERATOR_KEY}),
    }]


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory, refusing_url: str) -> Iterator[Servers]:
    work = tmp_path_factory.mktemp("cli")
    mail_env = {"MULTIMAIL_API_KEY": ""}  # keys come per request, as bearer headers
    with http_server("fixtures.schema_zoo") as zoo_http, \
            http_server("fixtures.schema_zoo", transport="sse") as zoo_sse, \
            http_server("fixtures.multimail", "--db", str(work / "http-mail.sqlite3"), "--reset",
                        env=mail_env) as mail_http:
        yield Servers(zoo_http, zoo_sse, mail_http, refusing_url, work)


@pytest.fixture(scope="module")
def runs(servers: Servers) -> dict[str, Result]:
    results: dict[str, Result] = {}
    with ThreadPoolExecutor(max_workers=max(4, (os.cpu_count() or 2) * 2)) as pool:
        for stage in _invocations(servers):
            futures = {name: pool.submit(run_cli, run) for name, run in stage.items()}
            results.update({name: f.result() for name, f in futures.items()})
    return results


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """``main(argv)`` in this process (no import cost); environment as a subprocess would get it."""
    for name in list(os.environ):
        if name.startswith(("MULTIMAIL_", "BRIDGE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("COLUMNS", "200")  # as run_cli does: table rows stay on one line

    def invoke(*argv: str, env: dict[str, str] | None = None, stdin: str | None = None) -> Result:
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        if stdin is not None:
            monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
        code = main(list(argv))
        captured = capsys.readouterr()
        return Result(list(argv), code, captured.out, captured.err)

    return invoke


def _no_secret(result: Result, *secrets: str) -> None:
    for secret in secrets or (SECRET,):
        assert secret not in result.out and secret not in result.err, result


# -- tools -----------------------------------------------------------------------------------------


def test_tools_table_over_stdio(runs: dict[str, Result]) -> None:
    r = runs["tools_stdio"]
    assert r.code == 0, r
    head = r.out.splitlines()[:2]
    assert head[0] == "schema-zoo 1.0.0"
    for part in ("protocol 20", "stdio", f"{len(ZOO_TOOLS)} tools", "listed in"):
        assert part in head[1], head
    assert "Tool (AutoGen name)" in r.out and "Required" in r.out
    row = next(line for line in r.out.splitlines() if line.startswith("files_read "))
    assert "Read a file" in row and "read-only" in row and "path" in row
    assert "MCP: files.read" in r.out
    assert r.err == ""


def _check_catalogue(r: Result, transport: str) -> None:
    assert r.code == 0, r
    doc = r.json()
    assert doc["server"]["name"] == "schema-zoo" and doc["server"]["transport"] == transport
    assert doc["toolCount"] == len(ZOO_TOOLS)
    assert [t["name"] for t in doc["tools"]] == list(ZOO_TOOLS)  # every page, in order
    for tool in doc["tools"]:
        assert tool["inputSchema"] == ZOO_SCHEMAS[tool["name"]]
    by_name = {t["name"]: t for t in doc["tools"]}
    assert by_name["files.read"]["autogenName"] == "files_read"
    assert by_name["files.read"]["annotations"] == {"readOnlyHint": True, "idempotentHint": True,
                                                    "openWorldHint": False}


def test_tools_json_over_http(runs: dict[str, Result]) -> None:
    _check_catalogue(runs["tools_http_json"], "http")


def test_tools_json_from_the_fixture_config_over_stdio(runs: dict[str, Result]) -> None:
    # two_servers.json: ${BRIDGE_PYTHON:-python3}, ${ZOO_PAGE_SIZE:-7} (default used), ${BRIDGE_ROOT}
    _check_catalogue(runs["tools_config_stdio_json"], "stdio")


def test_tools_json_over_sse(servers: Servers, cli: Callable[..., Result]) -> None:
    _check_catalogue(cli("tools", servers.zoo_sse, "--json"), "sse")


def test_tools_multimail_over_stdio_hides_the_key(cli: Callable[..., Result], tmp_path: Path) -> None:
    r = cli("tools", "--env", f"MULTIMAIL_API_KEY={AGENT_KEY}", "--env", f"PYTHONPATH={ROOT}", "--", PY, "-m",
            "fixtures.multimail", "--db", str(tmp_path / "mail.sqlite3"))
    assert r.code == 0, r
    assert r.out.startswith("multimail 0.7.0")
    assert "46 tools" in r.out.splitlines()[1]
    row = next(line for line in r.out.splitlines() if line.startswith("send_email "))
    assert "to, subject, markdown" in row
    _no_secret(r, AGENT_KEY)


# -- show ------------------------------------------------------------------------------------------


def test_show_prints_schemas_signature_and_a_lossless_verdict(runs: dict[str, Result]) -> None:
    r = runs["show_http"]
    assert r.code == 0, r
    for part in ("defs_ref", "Local `$defs` + `$ref`", "inputSchema (from the server)", '"$ref": "#/$defs/address"',
                 "Python signature (generated by the bridge)", "async def defs_ref(",
                 "shipping: DefsRefAddress,  # Where the parcel goes.", "class DefsRefAddress(TypedDict):",
                 "Tool schema AutoGen sends to the model", '"parameters": "(the inputSchema above, unchanged)"',
                 '"strict": false', "Fidelity: lossless",
                 "read-only: not given"):
        assert part in r.out, part
    assert "pattern" in r.out.split("Fidelity: lossless")[1]  # constraints left to validation are named


def test_show_json_names_each_difference(runs: dict[str, Result]) -> None:
    r = runs["show_stdio_json"]
    assert r.code == 0, r
    doc = r.json()
    assert doc["tool"]["name"] == "keyword_args"
    assert doc["autogenSchema"]["parameters"] == ZOO_SCHEMAS["keyword_args"]  # the model sees it unchanged
    assert "    from_: str,  # Python keyword." in doc["signature"]
    verdict = doc["fidelity"]
    assert verdict["lossless"] is False
    renamed = {d["pointer"]: d for d in verdict["differences"] if d["kind"] == "renamed"}
    assert set(renamed) == {"/properties/from", "/properties/class", "/properties/schema", "/properties/model_config",
                            "/properties/json", "/properties/self", "/properties/data-type", "/properties/2fa"}
    assert renamed["/properties/from"]["view"] == "signature"
    assert "'from' is a Python keyword" in renamed["/properties/from"]["detail"]


def test_show_names_a_tool_renamed_for_the_model(servers: Servers, cli: Callable[..., Result]) -> None:
    r = cli("show", servers.zoo_http, "files.read", "--json")
    assert r.code == 0, r
    doc = r.json()
    assert doc["autogenSchema"]["name"] == "files_read"
    [diff] = doc["fidelity"]["differences"]
    assert (diff["view"], diff["pointer"], diff["kind"]) == ("model", "/name", "renamed")
    assert "calls still go out as 'files.read'" in diff["detail"]


def test_show_send_email_from_the_config_over_http(servers: Servers, cli: Callable[..., Result]) -> None:
    r = cli("show", "send_email", "--config", str(CONFIG), "--server", "multimail",
            env={"MULTIMAIL_URL": servers.mail_http, "MULTIMAIL_API_KEY": AGENT_KEY})
    assert r.code == 0, r
    assert r.out.startswith("send_email  Send an email")
    assert "to: list[str]," in r.out and "attachments: list[SendEmailAttachmentsItem] = OMIT," in r.out
    assert "Fidelity: lossless" in r.out
    _no_secret(r, AGENT_KEY)


# -- call ------------------------------------------------------------------------------------------


def test_call_prints_structured_content_as_json(servers: Servers, cli: Callable[..., Result]) -> None:
    r = cli("call", servers.zoo_http, "stats", "--arg", "numbers=[1, 2, 3.5]")
    assert r.code == 0, r
    assert json.loads(r.out) == {"count": 3, "sum": 6.5, "mean": 6.5 / 3, "extremes": {"min": 1.0, "max": 3.5}}


def test_call_saves_images_and_audio(runs: dict[str, Result], servers: Servers) -> None:
    image, audio = runs["call_image"], runs["call_audio_stdio"]
    assert image.code == 0, image
    assert audio.code == 0, audio
    assert image.out.splitlines()[0] == "a 4x4 orange PNG follows"
    png = servers.work / "media" / "image_result-1.png"
    assert f"[image image/png, {len(PNG_BYTES)} bytes saved to {png}]" in image.out
    assert png.read_bytes() == PNG_BYTES
    wav = servers.work / "media" / "audio_result-1.wav"
    assert f"saved to {wav}]" in audio.out
    assert wav.read_bytes() == WAV_BYTES


def test_call_arguments_from_file_stdin_and_pairs(servers: Servers, cli: Callable[..., Result],
                                                   tmp_path: Path) -> None:
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"count": 1, "list": [1, 2], "name": "overridden"}))
    r = cli("call", servers.zoo_http, "echo_types", "--args", f"@{args_file}", "--arg", "count=5", "--arg",
            "name=007", "--arg", "flag=true", "--arg", "nothing=null", "--json")
    assert r.code == 0, r
    echoed = r.json()["structuredContent"]
    # --arg over --args; JSON where it parses; "007" stays a string because name is a string property
    assert echoed["arguments"] == {"count": 5, "list": [1, 2], "name": "007", "flag": True, "nothing": None}
    assert echoed["types"]["count"] == "integer" and echoed["types"]["name"] == "string"
    r = cli("call", servers.zoo_http, "nullable_clears", "--args", "@-", "--arg", "title=null",
            stdin='{"assignee": "ann", "priority": null}')
    assert r.code == 0, r
    seen = json.loads(r.out)  # the JSON text block mirrors structuredContent, so it is printed once
    assert seen["received_keys"] == ["assignee", "priority", "title"]
    assert seen["null_keys"] == ["priority", "title"]


def test_call_tool_error_exits_5(runs: dict[str, Result], servers: Servers, cli: Callable[..., Result]) -> None:
    r = runs["call_tool_error"]
    assert r.code == 5, r
    assert r.out == ""
    assert r.error_line == ("mcp-bridge: error: server 'schema-zoo', tool 'error_result': "
                            "the tool returned an error: disk on fire")
    assert "Traceback" not in r.err
    r = cli("call", servers.zoo_http, "error_result", "--json")
    assert r.code == 5, r
    assert r.json()["isError"] is True  # the whole result still reaches stdout for scripts


def test_call_protocol_error_exits_5(servers: Servers, cli: Callable[..., Result]) -> None:
    r = cli("call", servers.zoo_http, "protocol_error", "--arg", "message=no such record")
    assert r.code == 5, r
    assert "MCP error -32602: no such record" in r.error_line


def test_call_invalid_arguments_exit_1_naming_argument_and_rule(runs: dict[str, Result], servers: Servers,
                                                                cli: Callable[..., Result]) -> None:
    r = runs["call_invalid"]
    assert r.code == 1, r
    assert "tool 'validated_order': invalid argument 'items[0].sku'" in r.error_line
    assert "(rule: pattern)" in r.error_line
    r = cli("call", servers.zoo_http, "string_constraints", "--arg", "sku=ABC-1234")
    assert r.code == 1, r
    assert "invalid argument 'username': 'username' is a required property (rule: required)" in r.error_line


def test_call_unknown_tool_suggests_the_closest(servers: Servers, cli: Callable[..., Result]) -> None:
    r = cli("call", servers.zoo_http, "imag_result")
    assert r.code == 1, r
    assert "unknown tool 'imag_result'; did you mean 'image_result'" in r.error_line


def test_call_timeout_exits_5(servers: Servers, cli: Callable[..., Result]) -> None:
    r = cli("call", servers.zoo_http, "sleep", "--arg", "seconds=60", "--timeout", "2")
    assert r.code == 5, r
    assert "no answer within 2s" in r.error_line


def test_main_job_reply_is_held_and_the_operator_sees_it(runs: dict[str, Result]) -> None:
    reply = runs["call_mail_reply"]
    assert reply.code == 0, reply
    held = json.loads(reply.out)
    assert held["status"] == "pending_send_approval"
    pending = runs["config_mail_pending"]
    assert pending.code == 0, pending
    listed = json.loads(pending.json()["content"][0]["text"])["pending"]
    assert [p["id"] for p in listed] == [held["id"]]
    assert listed[0]["markdown"] == REPLY
    # --debug describes the target and logs the protocol, with the bearer key masked
    assert "Authorization: ***" in pending.err
    _no_secret(reply, AGENT_KEY)
    _no_secret(pending, AGENT_KEY, OPERATOR_KEY)


# -- connection failures ---------------------------------------------------------------------------


def test_unreachable_url_exits_4(runs: dict[str, Result]) -> None:
    r = runs["unreachable"]
    assert r.code == 4, r
    assert "cannot reach the server" in r.error_line
    assert r.err.count("\n") == 1 and "Traceback" not in r.err


def test_command_not_found_exits_4(cli: Callable[..., Result]) -> None:
    r = cli("tools", "--", "mcp-bridge-no-such-command")
    assert r.code == 4, r
    assert "command not found: mcp-bridge-no-such-command" in r.error_line


def test_server_exiting_at_start_exits_4_with_its_stderr_masked(runs: dict[str, Result]) -> None:
    r = runs["exits_at_start"]
    assert r.code == 4, r
    assert "exited while starting" in r.error_line
    assert "(stderr: fatal: token rejected: ***)" in r.error_line
    _no_secret(r)
    debug = runs["exits_at_start_debug"]
    assert debug.code == 4, debug
    assert "SERVER_TOKEN=***" in debug.err  # the target as --debug describes it
    assert "server stderr (last lines):" in debug.err and "Traceback" in debug.err
    _no_secret(debug)


def test_server_that_never_answers_exits_4(cli: Callable[..., Result]) -> None:
    r = cli("tools", "--timeout", "2", "--", PY, "-c", "import time; time.sleep(60)")
    assert r.code == 4, r
    assert "did not finish starting within 2s" in r.error_line


def test_auth_refused_exits_3(runs: dict[str, Result], servers: Servers, cli: Callable[..., Result]) -> None:
    r = runs["auth_sse"]
    assert r.code == 3, r
    assert "authentication refused (HTTP 401)" in r.error_line
    _no_secret(r)
    debug = cli("tools", f"{servers.refusing}/sse", "--debug", "--header", f"X-API-Key: {SECRET}")
    assert debug.code == 3, debug
    assert "X-API-Key: ***" in debug.err
    _no_secret(debug)


def test_auth_refused_over_streamable_http_exits_3(servers: Servers, cli: Callable[..., Result]) -> None:
    r = cli("tools", f"{servers.refusing}/mcp", "--header", f"Authorization: Bearer {SECRET}")
    _no_secret(r)
    assert r.code == 3, r


def test_every_status_is_covered_by_a_real_process(runs: dict[str, Result]) -> None:
    """Each exit status the issue names comes out of at least one real ``mcp-bridge`` process."""
    assert {0, 1, 3, 4, 5} <= {r.code for r in runs.values()}
