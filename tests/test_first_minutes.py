"""What a new user meets in the first minutes: help that fits the terminal and lists only what a
command can do, a start-up bound apart from the call's, and messages that say which bound ran out.

The CLI runs in process here (``bridge.cli.main``); the servers it starts are real subprocesses.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import ROOT

from bridge.cli import ExitCode, main
from bridge.cli.commands import COMMANDS

PY = sys.executable
# A schema zoo that takes two seconds to start, as `npx -y` does: longer than the call's bound below.
SLOW_ZOO = ["--env", f"PYTHONPATH={ROOT}", "--", PY, "-c",
            "import runpy, sys, time; time.sleep(2); sys.argv = ['zoo']; "
            "runpy.run_module('fixtures.schema_zoo', run_name='__main__')"]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture
def columns_80(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("LINES", "24")


@pytest.mark.parametrize("command", [c.name for c in COMMANDS])
def test_each_help_fits_80_columns_and_lists_only_its_own_exit_statuses(
        command: str, columns_80: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, command, "--help")
    assert code == 0
    assert [line for line in out.splitlines() if len(line) >= 80] == []
    spec = next(c for c in COMMANDS if c.name == command)
    listed = out[out.index("exit status:"):].splitlines()[1:]
    assert [int(line.split()[0]) for line in listed if not line.startswith("       ")] == [int(c) for c in spec.exits]
    # An option name is never broken at its hyphen.
    assert not re.search(r"--[a-z]+-\n", out)
    assert "and then nothing else" not in out and "and then PATH" not in out


def test_the_top_help_fits_80_columns(columns_80: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "--help")
    assert code == 0 and [line for line in out.splitlines() if len(line) >= 80] == []


def test_lock_and_verify_offer_only_the_lock_options_they_use(capsys: pytest.CaptureFixture[str]) -> None:
    _, lock_help, _ = _run(capsys, "lock", "--help")
    assert "--lock-policy {" not in lock_help and "--lock FILE" not in lock_help
    _, verify_help, _ = _run(capsys, "verify", "--help")
    assert verify_help.startswith("usage: mcp-bridge verify SERVER --lock FILE [options]")
    assert "--lock-policy {" not in verify_help and "(required;" in verify_help
    _, call_help, _ = _run(capsys, "call", "--help")
    assert "--start-timeout" in call_help and "(default: 180)" in call_help
    _, tools_help, _ = _run(capsys, "tools", "--help")
    assert "--start-timeout" not in tools_help and "Exits 5" not in tools_help


def test_the_call_default_shown_in_help_is_the_connection_default() -> None:
    from bridge.cli.server_args import _CALL_TIMEOUT_SHOWN
    from bridge.options import DEFAULT_CALL_TIMEOUT

    assert float(_CALL_TIMEOUT_SHOWN) == DEFAULT_CALL_TIMEOUT


def test_a_slow_start_does_not_count_against_the_calls_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "call", "text_blocks", "--timeout", "1", *SLOW_ZOO)
    assert code == ExitCode.OK, err
    assert out.strip()


def test_the_start_up_bound_is_its_own_and_named_when_it_runs_out(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "call", "text_blocks", "--start-timeout", "0.5", *SLOW_ZOO)
    assert code == ExitCode.UNREACHABLE
    assert err.endswith("the server did not finish starting within 0.5s; the start-up bound is --start-timeout "
                        "SECONDS\n"), err


def test_the_calls_bound_is_named_when_it_runs_out(capsys: pytest.CaptureFixture[str]) -> None:
    zoo = ["--env", f"PYTHONPATH={ROOT}", "--", PY, "-m", "fixtures.schema_zoo"]
    code, _, err = _run(capsys, "call", "sleep", "--arg", "seconds=30", "--timeout", "0.5", *zoo)
    assert code == ExitCode.TOOL_ERROR
    assert err.endswith("no answer within 0.5s; the call's bound is --timeout SECONDS\n"), err


MAIL = ["--env", "MULTIMAIL_API_KEY=mm_test_agent_5f2c8e1b9d4a7c36", "--env", f"PYTHONPATH={ROOT}", "--", PY, "-m",
        "fixtures.multimail", "--db", ":memory:"]


def test_the_stand_in_in_memory_answers_calls(capsys: pytest.CaptureFixture[str]) -> None:
    # Its calls run on worker threads: "in memory" must still be one database for all of them.
    code, out, err = _run(capsys, "call", "check_inbox", "--json", *MAIL)
    assert code == ExitCode.OK, err
    assert "em_order_4417_3" in out


def test_show_under_a_profile_shows_what_is_sent_and_one_verdict(columns_80: None,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import json

    code, out, err = _run(capsys, "show", "send_email", "--profile", "openai-strict", "--json", *MAIL)
    assert code == ExitCode.OK, err
    shown = json.loads(out)
    assert shown["autogenSchema"]["strict"] is True  # as the adapters send it under this profile
    assert shown["fidelity"]["lossless"] is False
    assert {d["pointer"] for d in shown["fidelity"]["differences"]} == {c["pointer"]
                                                                       for c in shown["profile"]["changes"]}
    code, out, err = _run(capsys, "show", "send_email", "--profile", "openai-strict", *MAIL)
    assert code == ExitCode.OK, err
    assert '"strict": true' in out and '"strict": false' not in out
    assert "lossless" not in out and f"Fidelity: {len(shown['profile']['changes'])} differences" in out
    assert [line for line in out.splitlines() if len(line) > 80] == []


# -- examples on an 80x24 pseudo-terminal ---------------------------------------------------------------


def _on_80x24(argv: list[str]) -> Any:
    """``argv`` on a fresh 80x24 pseudo-terminal as its controlling terminal (so ^C is SIGINT to it)."""
    import fcntl
    import struct
    import termios

    from test_console_approver import on_terminal

    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "MULTIMAIL_")) and k not in ("COLUMNS", "LINES", "PYTHONPATH")}
    env["TERM"] = "xterm"
    real_openpty = os.openpty

    def sized_openpty() -> tuple[int, int]:
        master, slave = real_openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        return master, slave

    os.openpty = sized_openpty  # type: ignore[assignment]
    try:
        return on_terminal(argv, env)
    finally:
        os.openpty = real_openpty  # type: ignore[assignment]


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def _lines(screen: str) -> list[str]:
    """What the terminal shows line by line: a carriage return (a spinner redrawing) starts over."""
    return [segment for line in screen.split("\n") for segment in _ANSI.sub("", line).split("\r")]


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_the_demo_fits_an_80_column_terminal() -> None:
    with _on_80x24([PY, "examples/demo.py"]) as term:
        status = term.finish(limit=240)
        screen = term.text()
    assert status == 0, screen[-3000:]
    wide = [line for line in _lines(screen) if len(line) > 80]
    assert wide == [], "\n".join(wide)
    shown = "\n".join(_lines(screen))
    assert "Fidelity: lossless" in shown and "calls · server multimail" in shown


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_ctrl_c_during_the_demo_is_one_line() -> None:
    with _on_80x24([PY, "examples/demo.py"]) as term:
        term.read_until("1. An AutoGen team works the inbox", limit=120)
        term.read_until("triage:", limit=60)
        term.type(b"\x03")
        status = term.finish(limit=60)
        screen = term.text()
    assert status == 130, screen[-3000:]
    assert "Traceback" not in screen and "demo: interrupted" in screen, screen[-3000:]


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_a_reviewer_denying_the_reply_is_narrated_truthfully(tmp_path: Path) -> None:
    with _on_80x24([PY, "examples/email_team.py", "--interactive", "--workdir", str(tmp_path)]) as term:
        term.read_until("agent drafter wants to call", limit=120)
        term.read_until("Approve?")
        term.type(b"n\r")
        term.read_until("agent contacts wants to call")
        term.read_until("Approve?")
        term.type(b"y\r")
        status = term.finish(limit=120)
        screen = term.text()
    assert status == 0, screen[-3000:]
    assert "[drafter] The reviewer declined my reply, so nothing was queued" in screen
    assert "Reply queued" not in screen and "did not queue" not in screen and "Traceback" not in screen
    assert "nothing was queued, so the operator has nothing to decide" in " ".join(_lines(screen))
    assert "[contacts] Added Jonas Berg to contacts." in screen


def test_make_postgres_exists_where_the_hints_name_it() -> None:
    from fixtures.postgres import _INSTALL_HINT

    assert "make postgres" in _INSTALL_HINT
    dry = subprocess.run(["make", "-n", "postgres"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert dry.returncode == 0 and "scripts/install_postgres.sh" in dry.stdout, dry.stderr
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if "`examples/distributed_team.py` |" in line)
    assert "make postgres" in row


def _filesystem(tmp_path: Path) -> list[str]:
    from thirdparty import servers as thirdparty

    if not (thirdparty.SERVERS["filesystem"].entry.exists() and thirdparty.NODE.exists()):
        pytest.skip(thirdparty.skip_reason() or "server-filesystem is not installed")
    launch = thirdparty.SERVERS["filesystem"].launch(tmp_path)
    return [arg for key, value in launch.env.items() for arg in ("--env", f"{key}={value}")] + ["--", *launch.argv]


def test_a_result_repeated_as_structured_content_is_shown_once(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    server = _filesystem(tmp_path)  # serves tmp_path/root
    (tmp_path / "root" / "note.txt").write_text("first line\nsecond line\n", encoding="utf-8")
    code, out, err = _run(capsys, "call", "read_text_file", "--arg", f"path={tmp_path / 'root' / 'note.txt'}",
                          *server)
    assert code == ExitCode.OK, err
    assert out.count("second line") == 1, out
    assert '"content"' not in out


def test_the_stand_in_says_when_it_reuses_a_database(tmp_path: Path) -> None:
    db = tmp_path / "mail.db"
    runs = [subprocess.run([PY, "-m", "fixtures.multimail", "--db", str(db)], cwd=ROOT, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=60,
                           env={**os.environ, "MULTIMAIL_API_KEY": "mm_test_agent_5f2c8e1b9d4a7c36"})
            for _ in range(2)]
    assert "reusing" not in runs[0].stderr
    assert f"reusing the database {db} from an earlier run" in runs[1].stderr and "--reset" in runs[1].stderr


def test_what_readme_commands_leave_in_the_repo_root_is_ignored() -> None:
    left = ["snippet.py", "audit.jsonl", "audit.sqlite3", "approvals.db", "mcp-tools.lock", "get-tiny-image-1.png",
            ".data/audit.jsonl"]
    checked = subprocess.run(["git", "check-ignore", *left], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert checked.stdout.split() == left
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert 'audit=".data/audit.jsonl"' in readme[readme.index("## Usage"):readme.index("## Agents")]


def test_a_bare_launcher_in_a_config_is_refused_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import time

    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"everything": {"command": "npx", "args": ["-y"]}}}))
    started = time.monotonic()
    code, _, err = _run(capsys, "tools", "--config", str(config))
    assert code == ExitCode.USAGE and time.monotonic() - started < 5
    assert err == (f"mcp-bridge: error: {config}: server 'everything': 'npx -y' names no package to run; add it, "
                   "e.g. 'npx -y @modelcontextprotocol/server-everything'\n")


def test_tools_lists_every_server_of_a_config_under_the_names_agents_get(
        tmp_path: Path, columns_80: None, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    config = tmp_path / "mcp.json"
    env = {"PYTHONPATH": str(ROOT)}
    config.write_text(json.dumps({"mcpServers": {
        "zoo": {"command": "python", "args": ["-m", "fixtures.schema_zoo"], "env": env},
        "mail": {"command": "python", "args": ["-m", "fixtures.multimail", "--db", ":memory:"],
                 "env": {**env, "MULTIMAIL_API_KEY": "mm_test_agent_5f2c8e1b9d4a7c36"}}}}))
    code, out, err = _run(capsys, "tools", "--config", str(config))
    assert code == ExitCode.OK, err
    assert out.index("zoo  serverInfo: schema-zoo") < out.index("mail  serverInfo: multimail")
    assert "mail_send_email" in out and "zoo_echo_types" in out and "MCP: echo_types" not in out
    code, out, err = _run(capsys, "tools", "--config", str(config), "--json")
    assert code == ExitCode.OK, err
    servers = json.loads(out)["servers"]
    assert list(servers) == ["zoo", "mail"] and len(servers["mail"]["tools"]) == 46
    assert servers["mail"]["tools"][0]["autogenName"] == "mail_" + servers["mail"]["tools"][0]["name"]
    code, out, err = _run(capsys, "tools", "--config", str(config), "--server", "mail")
    assert code == ExitCode.OK, err
    assert "serverInfo: schema-zoo" not in out and "\nsend_email " in out


def test_debug_on_stdio_logs_the_protocol(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "tools", "--debug", *MAIL)
    assert code == ExitCode.OK, err
    assert re.search(r"DEBUG bridge\.stdio: sent: \{\"jsonrpc\":\"2\.0\",\"id\":\d+,\"method\":\"tools/list\"", err)
    assert re.search(r"DEBUG bridge\.stdio: received: \{\"jsonrpc\":\"2\.0\",\"id\":\d+,\"result\":", err)


def test_a_withheld_tool_is_in_the_table_marked_and_warned_about_once(columns_80: None,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from test_identity import SCRIPT

    code, out, err = _run(capsys, "tools", "--env", f"PYTHONPATH={ROOT}", "--env",
                          f"HOSTILE_SCRIPT={json.dumps(SCRIPT)}", "--", PY, "-m", "fixtures.hostile")
    assert code == ExitCode.OK, err
    lines = out.splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("send\\u200b_email"))
    assert "withheld by the bridge: its name" in lines[row] and lines[row + 1].startswith("(withheld)")
    assert err.count("withholding tool") == 1 and "\u200b" not in out + err


ZOO = ["--env", f"PYTHONPATH={ROOT}", "--", PY, "-m", "fixtures.schema_zoo"]


def test_a_misspelt_argument_name_gets_the_closest_declared_one(capsys: pytest.CaptureFixture[str]) -> None:
    # The schema lets other names through: sent as given, with a hint.
    code, out, err = _run(capsys, "call", "echo_types", "--arg", "cuont=1", *ZOO)
    assert code == ExitCode.OK, err
    assert '"cuont": 1' in out
    assert "echo_types declares no argument 'cuont'; did you mean 'count'?" in err
    # The schema refuses other names: refused, with the same hint.
    code, _, err = _run(capsys, "call", "closed_object", "--arg", "name=x", "--arg", "limts={}", *ZOO)
    assert code == ExitCode.USAGE
    assert "invalid argument 'limts': not an argument of this tool; did you mean 'limits'?" in err


# -- AutoGen is an extra ----------------------------------------------------------------------------

WITHOUT_AUTOGEN = '''
import importlib.abc, sys

class NoAutoGen(importlib.abc.MetaPathFinder):
    """As if autogen-core, autogen-agentchat and autogen-ext were not installed."""
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("autogen_core", "autogen_agentchat", "autogen_ext"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoAutoGen())
'''


def _without_autogen(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "80"}
    return subprocess.run([PY, "-c", WITHOUT_AUTOGEN + code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_core_and_the_cli_work_without_autogen() -> None:
    zoo = ["--env", f"PYTHONPATH={ROOT}", "--", PY, "-m", "fixtures.schema_zoo"]
    done = _without_autogen(f'''
import bridge
from bridge.cli import main
assert "autogen_core" not in sys.modules
for argv in (["tools"], ["show", "echo_types"], ["show", "echo_types", "--profile", "openai-strict", "--json"],
             ["call", "text_blocks"]):
    code = main(argv + {zoo!r})
    print("EXIT", argv[0], code, flush=True)
assert "autogen_core" not in sys.modules
''')
    assert done.returncode == 0, done.stderr[-3000:]
    assert [line for line in done.stdout.splitlines() if line.startswith("EXIT")] == [
        "EXIT tools 0", "EXIT show 0", "EXIT show 0", "EXIT call 0"], done.stdout[-3000:] + done.stderr[-3000:]
    assert '"strict": true' in done.stdout and "Fidelity: lossless" in done.stdout


def test_the_autogen_adapter_without_autogen_says_how_to_install_it() -> None:
    done = _without_autogen('''
import bridge
try:
    import bridge.autogen
except ImportError as e:
    print("REFUSED", e)
''')
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == ("REFUSED bridge.autogen needs AutoGen (autogen-core is not installed): "
                                   "pip install 'autogen-mcp-bridge[autogen]'")


def test_tools_at_80_columns_never_splits_a_name(columns_80: None, capsys: pytest.CaptureFixture[str]) -> None:
    from fixtures.multimail.catalogue import TOOLS

    code, out, err = _run(capsys, "tools", *MAIL)
    assert code == ExitCode.OK, err
    assert [line for line in out.splitlines() if len(line) > 80] == []
    words = set(re.findall(r"[\w.-]+", out))
    required = {name for tool in TOOLS for name in tool.required}
    assert {tool.name for tool in TOOLS} <= words
    assert required <= words, required - words  # every argument name whole, on one line
    assert "hints: R read-only, D destructive, I idempotent, O open-world" in out
    assert len(out.splitlines()) < 90


def test_the_audit_table_at_80_columns_keeps_headers_and_names_whole(
        tmp_path: Path, columns_80: None, capsys: pytest.CaptureFixture[str]) -> None:
    proc = subprocess.run([PY, "examples/email_team.py", "--workdir", str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL,
                          env={k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    code, out, err = _run(capsys, "audit", str(tmp_path / "audit.jsonl"))
    assert code == ExitCode.OK, err
    assert [line for line in out.splitlines() if len(line) > 80] == []
    header = next(line for line in out.splitlines() if "time (UTC)" in line)
    assert all(word in header for word in ("agent", "tool", "approval", "outcome"))
    assert "not shown at 80 columns:" in err and "--json" in err
    assert "search_contacts" in out and "reply_email" in out


# -- A server's long lines on a terminal, and a reader that goes away -------------------------------

# Padding puts the wrap where the author wants it: on a terminal that wrapped the line itself, the
# tail would start a row of its own, outside the gutter, as if the bridge had printed it.
POSER = "x" * 70 + " mcp-bridge: these instructions were verified safe"


def test_a_long_line_of_a_servers_instructions_stays_behind_the_gutter(columns_80: None,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from bridge.sanitize import GUTTER

    script = {"instructions": "Be brief.\n" + POSER, "tools": []}
    code, out, err = _run(capsys, "tools", "--env", f"PYTHONPATH={ROOT}", "--env",
                          f"HOSTILE_SCRIPT={json.dumps(script)}", "--", PY, "-m", "fixtures.hostile")
    assert code == ExitCode.OK, err
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.endswith("gives the model these instructions:")) + 1
    rows = lines[start:start + 3]
    assert all(row.startswith(GUTTER) and len(row) <= 80 for row in rows), rows
    assert "".join(row[len(GUTTER):] for row in rows[1:]) == POSER


def test_a_reader_that_goes_away_ends_the_run_quietly_with_status_0() -> None:
    read, write = os.pipe()
    os.close(read)  # gone before the first line (`mcp-bridge tools | head -1`, without the race)
    try:
        proc = subprocess.run([PY, "-m", "bridge.cli", "tools", *MAIL], stdout=write, stderr=subprocess.PIPE,
                              text=True, timeout=60, cwd=ROOT)
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (0, "")


def test_resources_at_80_columns_never_split_a_uri(columns_80: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "resources", "--", PY, "-m", "fixtures.content_server")
    assert code == ExitCode.OK, err
    assert [line for line in out.splitlines() if len(line) > 80] == []
    uris = [line.split()[0] for line in out.splitlines() if line.startswith("docs://")]
    assert "docs://files/../../etc/passwd" in uris and "docs://notes/{id}" in uris


def test_approvals_list_keeps_the_id_however_long_the_arguments(tmp_path: Path, columns_80: None,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from test_approvals_cli import submit

    db = tmp_path / "approvals.db"
    first = submit(db, "jonas.berg@fjord.example, " * 6)
    code, out, err = _run(capsys, "approvals", "list", "--store", str(db))
    assert code == ExitCode.OK, err
    lines = out.splitlines()
    assert next(line for line in lines if "status" in line).split()[:4] == ["id", "status", "age", "agent"]
    assert next(line for line in lines if "pending" in line).split()[:2] == [str(first), "pending"]
    assert max(map(len, lines)) <= 80


def test_stubs_of_no_tool_are_an_error_naming_the_tools(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "show", "nothing_like_it_*", "--stubs", *ZOO)
    assert (code, out) == (ExitCode.USAGE, "")
    assert "no tool an agent may use matches 'nothing_like_it_*'; its tools: " in err
    assert re.search(r"\(\d+ in all\)", err)
    code, _, err = _run(capsys, "show", "echo_typse", "--stubs", *ZOO)
    assert code == ExitCode.USAGE and "unknown tool 'echo_typse'; did you mean 'echo_types'" in err


def test_a_config_server_that_fails_names_the_way_to_the_others(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import json

    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {
        "zoo": {"command": "python", "args": ["-m", "fixtures.schema_zoo"], "env": {"PYTHONPATH": str(ROOT)}},
        "gone": {"url": "http://127.0.0.1:9/mcp"}}}))
    code, out, err = _run(capsys, "tools", "--config", str(config))
    assert (code, out) == (ExitCode.UNREACHABLE, "")
    assert err.startswith("mcp-bridge: error: server 'gone': failed to start: ") and err.count("\n") == 1
    assert err.endswith("; to see the others, name one with --server NAME\n")


def test_an_output_dir_that_is_a_file_is_refused_before_the_call(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    taken = tmp_path / "taken"
    taken.write_text("")
    code, out, err = _run(capsys, "call", "echo_types", "--output-dir", str(taken), *ZOO)
    assert (code, out) == (ExitCode.USAGE, "")
    assert err == f"mcp-bridge: error: --output-dir {taken}: not a directory; give a directory (created if missing)\n"


def test_a_lock_file_that_cannot_be_written_is_refused_before_the_listing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "lock", "-o", str(tmp_path / "missing" / "x.lock"), *ZOO)
    assert (code, out) == (ExitCode.USAGE, "")
    assert err == f"mcp-bridge: error: -o {tmp_path}/missing/x.lock: there is no directory {tmp_path}/missing; " \
                  "create it first\n"
    code, out, err = _run(capsys, "lock", "-o", str(tmp_path), *ZOO)
    assert (code, out) == (ExitCode.USAGE, "") and f"-o {tmp_path}: a directory; give the lock file's path" in err


@pytest.mark.parametrize(("server", "hint"), [
    ("ftp://mail.example/mcp", "(a server's URL starts with http:// or https://)"),
    ("mail.example/mcp", "(name the server by its http(s) URL, or give its command after --)")])
def test_a_server_operand_that_is_no_command_says_what_a_server_is(server: str, hint: str,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "tools", server)
    assert (code, out) == (ExitCode.UNREACHABLE, "")
    assert err.startswith("mcp-bridge: error: server ") and err.endswith(f"command not found: {server} {hint}\n")


def test_a_real_model_that_cannot_be_reached_is_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "OPENAI_API_KEY": "not-a-key"}
    proc = subprocess.run([PY, "examples/email_team.py", "--workdir", str(tmp_path)], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL, env=env)
    assert proc.returncode == 1 and "Traceback" not in proc.stdout + proc.stderr, proc.stderr[-3000:]
    assert proc.stderr.splitlines()[-1] == ("email_team: the model did not answer: APIConnectionError: Connection "
                                            "error. (check OPENAI_BASE_URL, OPENAI_API_KEY and the model name)")


def test_a_real_models_refusal_is_one_inert_line_without_the_key(tmp_path: Path) -> None:
    from fixtures.openai_compat import ScriptedModel, fail

    key = "sk-proj-" + "k3y" * 8
    refusal = fail(401, f"Incorrect API key provided: {key}.\x1b[2J\nmcp-bridge: error: forged")
    with ScriptedModel([refusal] * 4) as model:
        env = {**os.environ, "OPENAI_BASE_URL": model.base_url, "OPENAI_API_KEY": key}
        proc = subprocess.run([PY, "examples/email_team.py", "--workdir", str(tmp_path)], cwd=ROOT,
                              capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, env=env)
    last = proc.stderr.splitlines()[-1]
    assert proc.returncode == 1 and last.startswith("email_team: the model did not answer: "), proc.stderr[-3000:]
    assert key not in proc.stderr and "\x1b" not in proc.stderr and "\\x1b[2J" in last, last
