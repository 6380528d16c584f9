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
from helpers import ROOT, http_server

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
    """One CLI invocation and what it should be given (``unset``: variables it must not see)."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    stdin: str | None = None
    unset: tuple[str, ...] = ()


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
    for name in run.unset:
        env.pop(name, None)
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

    @property
    def zoo_http_root(self) -> str:
        return self.zoo_http.removesuffix("/mcp")


# What `npx -y @scope/nope` prints when the package does not exist, quoting a token for good measure.
NPM_404 = (
    "import os, sys; w = sys.stderr.write; "
    "w('npm error code E404\\n'); "
    "w('npm error 404 Not Found - GET https://registry.npmjs.org/@scope%2fnope - Not found\\n'); "
    "w('npm error 404\\n'); "
    "w('npm error 404  \\'@scope/nope@*\\' is not in this registry (token ' + os.environ['NPM_TOKEN'] + ').\\n'); "
    "w('npm error 404 Note that you can also install from a\\n'); "
    "w('npm error 404 tarball, folder, http url, or git url.\\n'); "
    "w('npm error A complete log of this run can be found in: /root/.npm/_logs/debug-0.log\\n'); "
    "sys.exit(1)"
)


def _audit_file(work: Path) -> Path:
    path = work / "audit.jsonl"
    record = {"time": "2025-06-01T09:00:00+00:00", "agent": "drafter", "server": "multimail", "tool": "reply_email",
              "arguments": {"email_id": "em_0001", "markdown": "Hi Maria, a replacement rain fly ships today, "
                            "tracking number to follow."},
              "outcome": "ok", "decision": "approved", "reviewer": "console", "duration": 0.25}
    path.write_text(json.dumps(record) + "\n")
    return path


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
        "npm_404": Run(["tools", "--env", f"NPM_TOKEN={SECRET}", "--", PY, "-c", NPM_404]),
        "wrong_path_http": Run(["tools", f"{s.zoo_http_root}/wrong?api_key={SECRET}"]),
        "wrong_path_sse": Run(["tools", f"{s.zoo_http_root}/wrong/sse"]),
        "bare_python_config": Run(["tools", "--json", "--config", str(_bare_python_config(s.work))]),
        "piped_tools": Run(["tools", *ZOO], unset=("COLUMNS",)),
        "piped_audit": Run(["audit", str(_audit_file(s.work))], unset=("COLUMNS",)),
        "timeout_with_progress": Run(["call", s.zoo_http, "long_running", "--arg", "duration=30", "--arg",
                                      "heartbeat=0.05", "--timeout", "1"]),
        "every_bad_argument": Run(["call", s.zoo_http, "echo_types", "--arg", "count=true", "--arg", "flag=yes",
                                   "--arg", "nothing=false", "--arg", "name=5"]),
    }, {
        # after the agent's reply: the operator, through the fixture config, with its own key
        "config_mail_pending": Run(["call", "list_pending", "--json", "--debug", "--config", str(CONFIG),
                                    "--server", "multimail"], {"MULTIMAIL_URL": s.mail_http,
                                                               "MULTIMAIL_API_KEY": OPERATOR_KEY}),
    }]


def _bare_python_config(work: Path) -> Path:
    # "python" as configs write it: it must be the interpreter running the bridge (which has the
    # packages the server needs), not whatever "python" the server's minimal PATH finds first.
    path = work / "bare-python.json"
    path.write_text(json.dumps({"mcpServers": {"zoo": {"command": "python", "args": ["-m", "fixtures.schema_zoo"],
                                                       "env": {"PYTHONPATH": str(ROOT)}}}}))
    return path


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
    # The user's name for the server (from the command), then the server's own claim.
    assert head[0] == "fixtures.schema_zoo  serverInfo: schema-zoo 1.0.0"
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
    assert r.out.startswith("fixtures.multimail  serverInfo: multimail 0.7.0")
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
    assert r.error_line == (f"mcp-bridge: error: server '{servers.zoo_http.removeprefix('http://')}', "
                            "tool 'error_result': "
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


def test_call_timeout_while_progress_arrives_is_one_line(runs: dict[str, Result], servers: Servers) -> None:
    # Progress notifications still arriving as the session closes make the SDK log a traceback;
    # without --debug the user sees only the error.
    r = runs["timeout_with_progress"]
    assert r.code == 5, r
    zoo = servers.zoo_http.removeprefix("http://")
    assert r.err == (f"mcp-bridge: error: server '{zoo}', tool 'long_running': no answer within 1s; the call's bound "
                     "is --timeout SECONDS\n")


def test_call_over_stdio_times_out_with_a_server_that_ignores_end_of_input(cli: Callable[..., Result]) -> None:
    ignores_eof = "import time, sys; sys.stdin.close(); time.sleep(60)"
    r = cli("tools", "--timeout", "2", "--", PY, "-c", ignores_eof)
    assert r.code == 4, r
    assert r.err == (f"mcp-bridge: error: server '{Path(PY).name}': the server did not finish starting within 2s; "
                     "the start-up bound is --timeout SECONDS\n")


def test_every_bad_argument_is_reported_at_once_in_json_spelling(runs: dict[str, Result], servers: Servers) -> None:
    r = runs["every_bad_argument"]
    assert r.code == 1, r
    assert r.err == (f"mcp-bridge: error: server '{servers.zoo_http.removeprefix('http://')}', tool 'echo_types': "
                     "3 invalid arguments: "
                     "'count': true is not of type \"integer\" (rule: type); "
                     "'flag': \"yes\" is not of type \"boolean\" (rule: type); "
                     "'nothing': false is not of type \"null\" (rule: type)\n")


def _with_stderr_on_a_terminal(argv: list[str]) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal (where the spinner shows); returns what it drew."""
    import pty
    import select

    env = {k: v for k, v in os.environ.items() if not k.startswith(("MULTIMAIL_", "BRIDGE_"))}
    env.update({"PYTHONPATH": str(ROOT), "COLUMNS": "200", "TERM": "xterm"})
    master, slave = pty.openpty()
    proc = subprocess.Popen([PY, "-m", "bridge.cli", *argv], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    drawn = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed its end
                break
            if not chunk:
                break
            drawn += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    proc.stdout.close()
    return proc.wait(timeout=30), out, drawn.decode(errors="replace")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_the_spinner_shows_the_servers_progress(servers: Servers) -> None:
    code, out, drawn = _with_stderr_on_a_terminal(
        ["call", servers.zoo_http, "progress", "--arg", "steps=3", "--arg", "interval=0.4"])
    assert code == 0, drawn
    assert json.loads(out) == {"steps": 3}
    for step in (1, 2, 3):
        assert f"Calling progress… {step}/3 step {step}/3" in drawn, drawn


def test_piped_tables_keep_every_name_on_one_line(runs: dict[str, Result]) -> None:
    r = runs["piped_tools"]
    assert r.code == 0, r
    lines = r.out.splitlines()
    long_mcp = max(ZOO_TOOLS, key=len)
    assert any(line.strip() == f"MCP: {long_mcp}" for line in lines), r  # 94 characters, whole
    for name in ("embedded_resource_result", "structured_no_schema", "unexpected_exception"):
        assert any(line.startswith(f"{name} ") for line in lines), name
    audit = runs["piped_audit"]
    assert audit.code == 0, audit
    row = next(line for line in audit.out.splitlines() if "reply_email" in line)
    assert ('{"email_id":"em_0001","markdown":"Hi Maria, a replacement rain fly ships today, tracking number to '
            'follow."}') in row


def test_a_config_naming_bare_python_starts_the_server_with_this_interpreter(runs: dict[str, Result]) -> None:
    r = runs["bare_python_config"]
    assert r.code == 0, r
    assert r.json()["server"]["name"] == "schema-zoo"


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
    url = r.argv[1]
    # named by host, port and path: "127.0.0.1" alone does not say which of your servers it was
    assert r.error_line.startswith(f"mcp-bridge: error: server '{url.removeprefix('http://')}': "
                                   "cannot reach the server"), r
    assert r.err.count("\n") == 1 and "Traceback" not in r.err


def test_a_failed_start_quotes_the_stderr_lines_that_say_why(runs: dict[str, Result]) -> None:
    r = runs["npm_404"]
    assert r.code == 4, r
    assert r.err == (
        f"mcp-bridge: error: server '{Path(PY).name}': the server process exited while starting (stderr: "
        "npm error code E404 | npm error 404 Not Found - GET https://registry.npmjs.org/@scope%2fnope - Not found | "
        "npm error 404 '@scope/nope@*' is not in this registry (token ***).)\n")
    _no_secret(r)


def test_a_wrong_http_path_is_one_message_with_the_url(runs: dict[str, Result], servers: Servers) -> None:
    hint = "; check the path (MCP servers usually answer at /mcp, or /sse for SSE)"
    root = servers.zoo_http_root
    host = root.removeprefix("http://")
    http, sse = runs["wrong_path_http"], runs["wrong_path_sse"]
    assert (http.code, sse.code) == (4, 4), (http, sse)
    assert http.err == (f"mcp-bridge: error: server '{host}/wrong': HTTP 404 Not Found from "
                        f"{root}/wrong?api_key=***{hint}\n")
    assert sse.err == f"mcp-bridge: error: server '{host}/wrong/sse': HTTP 404 Not Found from {root}/wrong/sse{hint}\n"
    _no_secret(http)


def test_the_tool_before_the_server_gets_an_order_hint(cli: Callable[..., Result]) -> None:
    r = cli("call", "stats", "mcp-bridge-no-such-command")
    assert r.code == 4, r
    assert r.err == ("mcp-bridge: error: server 'stats': command not found: stats (the server goes first: "
                     "mcp-bridge call SERVER TOOL, or a command after --)\n")


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
    assert "server stderr (the lines that say why):\nfatal: token rejected: ***\n" in debug.err
    assert "Traceback" in debug.err
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
