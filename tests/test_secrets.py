"""Secrets never appear in logs, audit records, component dumps, lock files, error messages or CLI output.

Every path that prints or stores is driven with real servers while every logger records at
DEBUG, and each output is searched for the secret values. The servers are hostile on purpose:
the chaos server quotes its API key on stderr when it fails to start, in a JSON-RPC error,
and as garbage on stdout; the MultiMail stand-in takes a real key over stdio and HTTP.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from autogen_core import CancellationToken
from helpers import PY, ROOT, fixture_env, http_server, module_cmd

from bridge import BridgeError, ConnectError, ProtocolError, ServerStartError, connect
from bridge.audit import audit_interceptor
from bridge.lock import LockFile, ServerPin
from bridge.secrets import mask_text as redact
from bridge.targets import resolve_target
from fixtures.multimail.seed import AGENT_KEY

pytestmark = pytest.mark.anyio

ENV_SECRET = "sk-live-env-7d1e9a0c3b5f4e2a"
HEADER_SECRET = "hdr-tok-9a8b7c6d5e4f3a2b1c"
URL_SECRET = "url-tok-1f2e3d4c5b6a7980"
SECRETS = (ENV_SECRET, HEADER_SECRET, URL_SECRET, AGENT_KEY)


def assert_clean(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a secret leaked into {where}: …{text[max(0, text.find(secret) - 80):][:200]}"


@pytest.fixture
def every_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """All loggers at DEBUG; after the test, every formatted record (with tracebacks) is searched."""
    caplog.set_level(logging.DEBUG)
    yield caplog
    records = caplog.get_records("setup") + caplog.get_records("call")
    assert records, "nothing was logged: the check would prove nothing"
    for record in records:
        assert_clean(caplog.handler.format(record), f"the log record {record.name}:{record.lineno}")


def chaos(*args: str, **kwargs: object) -> object:
    return connect(module_cmd("fixtures.chaos", *args), env=fixture_env(CHAOS_SECRET=ENV_SECRET), cwd=ROOT,
                   name="chaos", timeout=10, call_timeout=5, **kwargs)  # type: ignore[arg-type]


def test_redact_masks_longest_first_and_ignores_short_values() -> None:
    assert redact("key=abcdef123456 and abcdef", ["abcdef", "abcdef123456"]) == "key=*** and ***"
    assert redact("flag 1 and true", ["1", "true"]) == "flag 1 and true"


async def test_stdio_paths(tmp_path: Path, every_log: pytest.LogCaptureFixture) -> None:
    # A server that dies at start quoting its key on stderr.
    with pytest.raises(ServerStartError) as start:
        async with chaos("--start", "exit"):  # type: ignore[attr-defined]
            pass
    assert "key=***" in str(start.value)
    for text in (str(start.value), repr(start.value), start.value.stderr_tail, *map(str, start.value.args)):
        assert_clean(text, "a start error")

    audit = tmp_path / "audit.jsonl"
    async with chaos("--start", "garbage") as server:  # type: ignore[attr-defined]
        tools = await server.tools(interceptors=[audit_interceptor(audit)])
        secret_error = next(t for t in tools if t.name == "secret_error")
        # A JSON-RPC error quoting the key: masked in the error, in the audit record, and in the log.
        with pytest.raises(ProtocolError) as err:
            await secret_error.run_json({}, CancellationToken())
        assert "upstream refused key ***" in str(err.value)
        assert_clean(str(err.value) + repr(err.value), "a protocol error")
        await next(t for t in tools if t.name == "echo").run_json({"text": "hi"}, CancellationToken())

        # Component dumps: every env value becomes a ${VAR} reference, so a reload still has them all.
        expected_target = {"command": PY, "args": ["-m", "fixtures.chaos", "--start", "garbage"],
                           "env": {"PYTHONPATH": "${PYTHONPATH}", "CHAOS_SECRET": "${CHAOS_SECRET}"},
                           "cwd": str(ROOT)}
        for tool in tools:
            dumped = tool.dump_component()
            assert_clean(dumped.model_dump_json(), f"the component dump of {tool.name}")
            assert [s["target"] for s in dumped.config["servers"]] == [expected_target], tool.name
        workbench = server.workbench_for("agent", approval=False, audit=tmp_path / "wb-audit.jsonl")
        assert_clean(workbench.dump_component().model_dump_json(), "the workbench dump")

        # Descriptions of the target, the session and the catalogue.
        target = server.session.target
        assert target.to_config() == expected_target
        for text in (repr(target), target.describe(), json.dumps(target.to_config()), repr(server.info)):
            assert_clean(text, "a target description")

        lock = tmp_path / "mcp-tools.lock"
        LockFile({"chaos": ServerPin.of(await server.session.list_tools())}).save(lock)
        assert_clean(lock.read_text(), "the lock file")

    # Two calls, each written ahead (started) and then finished.
    assert [json.loads(line).get("phase") for line in audit.read_text().splitlines()] == [
        "started", "finished", "started", "finished"]
    assert_clean(audit.read_text(), "the audit records")


async def test_garbage_quoting_the_key_is_masked_in_logs(every_log: pytest.LogCaptureFixture) -> None:
    # The SDK logs unparseable stdout lines, and so do we; both quote what the server sent.
    script = f"import sys; print('my key is {ENV_SECRET}', flush=True); sys.stdin.read()"
    with pytest.raises(BridgeError):
        async with connect([PY, "-c", script], env={"CHAOS_SECRET": ENV_SECRET}, timeout=2, name="leaky"):
            pass
    assert any("not valid JSON-RPC" in r.getMessage() for r in every_log.records)


async def test_http_paths(tmp_path: Path, every_log: pytest.LogCaptureFixture) -> None:
    headers = {"Authorization": f"Bearer {HEADER_SECRET}", "X-API-Key": HEADER_SECRET}
    with http_server("fixtures.chaos", env={"CHAOS_SECRET": ENV_SECRET}) as url:
        secret_url = f"{url}?api_key={URL_SECRET}"
        async with connect(url, headers=headers, name="chaos-http", timeout=10, call_timeout=5,
                           reconnect_attempts=1) as server:
            tools = await server.tools()
            assert (await server.call("echo", {"text": "hi"})).text == '{"text": "hi"}'
            for tool in tools:
                assert_clean(tool.dump_component().model_dump_json(), "an HTTP tool's component dump")
            target = server.session.target
            assert target.to_config() == {"url": url, "type": "http", "headers": {
                "Authorization": "${MCP_AUTHORIZATION}", "X-API-Key": "${MCP_X_API_KEY}"}}
            assert_clean(repr(target) + target.describe() + json.dumps(target.to_config()), "the HTTP target")
        port = int(url.rsplit(":", 1)[1].split("/")[0])
    # The server is gone: the unreachable-server errors must not quote the URL's credentials.
    for bad in (secret_url, f"http://user:{URL_SECRET}@127.0.0.1:{port}/mcp"):
        with pytest.raises(ConnectError) as err:
            async with connect(bad, headers=headers, timeout=3):
                pass
        assert_clean(str(err.value) + repr(err.value), "an unreachable-server error")


async def test_multimail_key_over_stdio_and_http(tmp_path: Path, every_log: pytest.LogCaptureFixture) -> None:
    db = str(tmp_path / "mail.sqlite3")
    env = fixture_env(MULTIMAIL_API_KEY=AGENT_KEY)
    async with connect(module_cmd("fixtures.multimail", "--db", db), env=env, cwd=ROOT) as server:
        result = await server.call("check_inbox", {"limit": 1})
        assert not result.is_error, result.text
        assert_clean(result.text, "a MultiMail result")
        assert_clean(server.session.target.describe(), "the MultiMail target")
    with http_server("fixtures.multimail", "--db", db) as url:
        async with connect(url, headers={"Authorization": f"Bearer {AGENT_KEY}"}) as server:
            assert not (await server.call("check_inbox", {"limit": 1})).is_error
        with pytest.raises(BridgeError):  # a wrong key: refused, and the refusal quotes neither key
            async with connect(url, headers={"Authorization": f"Bearer {AGENT_KEY}x"}) as server:
                result = await server.call("check_inbox", {"limit": 1})
                assert_clean(result.text, "a refusal")
                raise BridgeError(result.text)


def test_cli_output_masks_server_quoted_secrets() -> None:
    """The CLI's own streams: a server quoting its key at start and in an error."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    options = ["--env", f"CHAOS_SECRET={ENV_SECRET}", "--env", f"PYTHONPATH={ROOT}"]
    chaos_cmd = ["--", PY, "-m", "fixtures.chaos"]
    argvs = [["tools", *options, *chaos_cmd, "--start", "exit"],
             ["call", "secret_error", "--json", *options, *chaos_cmd],
             ["tools", "--debug", *options, *chaos_cmd, "--start", "garbage"]]
    with ThreadPoolExecutor(len(argvs)) as pool:  # each CLI process spends seconds importing
        runs = list(pool.map(lambda argv: subprocess.run([PY, "-m", "bridge.cli", *argv], capture_output=True,
                                                         text=True, env=env, cwd=ROOT, timeout=90), argvs))
    assert runs[0].returncode != 0 and "cannot start" in runs[0].stderr
    assert runs[1].returncode != 0 and "upstream refused key" in runs[1].stdout + runs[1].stderr
    assert runs[2].returncode == 0
    for run in runs:
        assert_clean(run.stdout + run.stderr, f"CLI output of {run.args[3:5]}")


def test_target_reprs_hide_env_and_header_values() -> None:
    target = resolve_target([PY, "-m", "x"], env={"API_KEY": ENV_SECRET})
    http = resolve_target("http://127.0.0.1:1/mcp", headers={"Authorization": f"Bearer {HEADER_SECRET}",
                                                             "Accept": "application/json"})
    # Secrets become references a loader expands; what is not secret stays as it is.
    assert target.to_config() == {"command": PY, "args": ["-m", "x"], "env": {"API_KEY": "${API_KEY}"}}
    assert http.to_config() == {"url": "http://127.0.0.1:1/mcp", "type": "http",
                                "headers": {"Authorization": "${MCP_AUTHORIZATION}", "Accept": "application/json"}}
    for text in (repr(target), target.describe(), json.dumps(target.to_config()),
                 repr(http), http.describe(), json.dumps(http.to_config())):
        assert_clean(text, "a target")


def test_plain_settings_are_not_secrets_but_their_value_under_another_name_is(tmp_path: Path) -> None:
    from bridge.cli.output import Output
    from bridge.targets import parse_config

    folder = str(tmp_path / "srv" / "app")
    target = resolve_target([PY, "-m", "x"], env={"PYTHONPATH": folder, "LC_ALL": "en_US.UTF-8",
                                                  "API_KEY": ENV_SECRET})
    assert target.secret_values() == [ENV_SECRET]
    # A listing that names the folder stays evidence; the key is still masked wherever it shows.
    out = Output()
    out.mask.add(target.secret_values())
    assert out.mask(f"{folder}/main.py {ENV_SECRET}") == f"{folder}/main.py ***"
    expanded = parse_config({"mcpServers": {"s": {"command": "x", "args": ["${HOME}/a", "${TOKEN}"]}}},
                            environ={"HOME": folder, "TOKEN": ENV_SECRET})["s"]
    assert expanded.secret_values() == [ENV_SECRET]
    # The same path given as a secret-named variable is a secret.
    assert resolve_target([PY, "-m", "x"], env={"SECRET_DIR": folder}).secret_values() == [folder]


def test_target_reprs_hide_url_credentials() -> None:
    http = resolve_target(f"http://user:{URL_SECRET}@127.0.0.1:1/mcp?api_key={URL_SECRET}&page=2")
    assert http.to_config() == {"url": "http://user:${MCP_URL_PASSWORD}@127.0.0.1:1/mcp?api_key=${MCP_API_KEY}&page=2",
                                "type": "http"}
    for text in (repr(http), http.describe(), json.dumps(http.to_config())):
        assert_clean(text, "a target")
