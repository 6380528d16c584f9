"""The CLI's pure parts, in process: exit-status mapping, arguments, masking, signatures, fidelity,
and every usage error that is caught before a server is contacted (``main(argv)`` returns the status).

Subprocess tests of each command against real servers are in ``test_cli.py``.
"""

from __future__ import annotations

import inspect
import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from helpers import ROOT

import bridge.errors as errors_module
from bridge.catalogue import Catalogue, ToolEntry
from bridge.cli import ExitCode, main
from bridge.cli.arguments import argument_problems, load_args_object, pair, parse_arguments
from bridge.cli.fidelity import check_fidelity
from bridge.cli.output import Output
from bridge.cli.pytypes import format_function
from bridge.cli.render import pretty_json
from bridge.cli.status import exit_status
from bridge.errors import (
    AuthError,
    BridgeError,
    CallTimeout,
    ConfigError,
    ConnectionLost,
    InvalidArguments,
    ProtocolError,
    ServerStartError,
    ServerUnreachable,
    ToolError,
    ToolNotFound,
)
from bridge.schema import compile_schema
from bridge.secrets import MASK, header_secrets
from bridge.targets import HttpTarget, StdioTarget, load_config, read_config, resolve_target
from fixtures.schema_zoo import ZOO_SCHEMAS, ZOO_TOOLS

CONFIG = ROOT / "fixtures" / "configs" / "two_servers.json"

# -- exit statuses ---------------------------------------------------------------------------------


def _all_subclasses(cls: type) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_all_subclasses(sub)]
    return out


def test_every_bridge_error_has_an_explicit_exit_status() -> None:
    """A new BridgeError subclass must be given a status on purpose, not fall through to the default."""
    from bridge.cli import status

    mapped = {cls for cls, _ in status._AFTER_CONNECT}
    for cls in _all_subclasses(BridgeError):
        if cls.__module__ != errors_module.__name__:
            continue
        assert any(issubclass(cls, m) for m in mapped), f"{cls.__name__} has no exit status"


@pytest.mark.parametrize(("exc", "connected", "code"), [
    (ConfigError("x"), False, ExitCode.USAGE),
    (InvalidArguments("x"), True, ExitCode.USAGE),
    (ToolNotFound("x"), True, ExitCode.USAGE),
    (AuthError("x"), False, ExitCode.AUTH),
    (ServerStartError("x"), False, ExitCode.UNREACHABLE),
    (ServerUnreachable("x"), False, ExitCode.UNREACHABLE),
    (ConnectionLost("x"), True, ExitCode.UNREACHABLE),
    (CallTimeout("x", timeout=1), False, ExitCode.UNREACHABLE),  # never finished starting
    (CallTimeout("x", timeout=1), True, ExitCode.TOOL_ERROR),  # the call did not answer
    (ProtocolError("x", code=-32603), False, ExitCode.UNREACHABLE),
    (ProtocolError("x", code=-32602), True, ExitCode.TOOL_ERROR),
    (ToolError("x"), True, ExitCode.TOOL_ERROR),
    (KeyboardInterrupt(), True, ExitCode.INTERRUPTED),
    (RuntimeError("bug"), True, ExitCode.USAGE),
])
def test_exit_status(exc: BaseException, connected: bool, code: ExitCode) -> None:
    assert exit_status(exc, connected=connected) is code


# -- usage errors: caught before any server is contacted -------------------------------------------


def _main(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(("argv", "message"), [
    (["tools"], "no server given"),
    (["tool", "http://x/mcp"], "unknown command 'tool'; did you mean 'tools'?"),
    (["show", "http://127.0.0.1:1/mcp"], "missing TOOL"),
    (["show", "http://127.0.0.1:1/mcp", "a", "b"], "unexpected argument 'b'"),
    (["tools", "http://127.0.0.1:1/mcp", "--", "python", "server.py"], "the server is named once"),
    (["tools", "--"], "nothing after --"),
    (["tools", "--server", "zoo"], "--server NAME needs --config FILE"),
    (["tools", "http://127.0.0.1:1/mcp", "--env", "K=V"], "--env applies to stdio servers"),
    (["tools", "--header", "X-Api-Key: abcd1234", "--", "python", "server.py"],
     "--header applies to HTTP and SSE servers"),
    (["tools", "http://127.0.0.1:1/mcp", "--header", "no colon here"], "--header #1: expected 'Name: value'"),
    (["tools", "--env", "1BAD=x", "--", "python", "server.py"], "--env #1: expected NAME=VALUE"),
    (["tools", "--env", "SURELY_NOT_SET_ANYWHERE_42", "--", "python", "server.py"],
     "SURELY_NOT_SET_ANYWHERE_42 is not set"),
    (["tools", "server", "--transport", "http"], "transport 'http' needs an http(s) URL"),
    (["tools", "http://127.0.0.1:1/mcp", "--timeout", "0"], "must be greater than 0"),
    (["tools", "http://127.0.0.1:1/mcp", "--bogus"], "unrecognized arguments: --bogus"),
    (["call", "http://127.0.0.1:1/mcp", "t", "--arg", "novalue"], "--arg #1: expected NAME=VALUE"),
    (["call", "http://127.0.0.1:1/mcp", "t", "--args", "[1]"], "--args: expected a JSON object, got array"),
    (["call", "http://127.0.0.1:1/mcp", "t", "--args", "{bad"], "--args: invalid JSON at line 1 column 2"),
    (["call", "http://127.0.0.1:1/mcp", "t", "--args", "@/nonexistent/args.json"],
     "--args @/nonexistent/args.json: file not found"),
    (["tools", "--config", "/nonexistent/mcp.json"], "config file not found"),
    (["show", "send_email", "--config", str(CONFIG)],
     "defines 2 servers (multimail, zoo); choose one with --server NAME"),
    (["tools", "--config", str(CONFIG), "--env", "K=V"], "--env, --header and --transport apply to one server"),
    (["tools", "--config", str(CONFIG), "--server", "multimial"], "did you mean 'multimail'?"),
])
def test_usage_errors_exit_1_with_one_line(capsys: pytest.CaptureFixture[str], argv: list[str],
                                            message: str) -> None:
    code, out, err = _main(capsys, *argv)
    assert code == ExitCode.USAGE
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("mcp-bridge: error: ")
    assert message in lines[0]


@pytest.mark.parametrize(("argv", "line"), [
    # every malformed --arg at once, by position (a misplaced value may be a credential)
    (["call", "http://127.0.0.1:1/mcp", "t", "--arg", "a", "--arg", "b=1", "--arg", "=3"],
     "--arg #1, #3: expected NAME=VALUE"),
    (["call", "http://127.0.0.1:1/mcp", "t", "--args", "{bad"],
     "--args: invalid JSON at line 1 column 2: Expecting property name enclosed in double quotes"),
    (["call", "http://127.0.0.1:1/mcp", "t", "--args", "@-"], "--args @-: expected a JSON object, got string"),
    # the tool typed where the server goes
    (["call", "get-sum", "--arg", "a=1", "http://127.0.0.1:1/mcp?api_key=sk-live-0123456789"],
     "the server goes first: mcp-bridge call http://127.0.0.1:1/mcp?api_key=*** get-sum [options]"),
    (["show", "send_email", "https://mail.example/mcp"],
     "the server goes first: mcp-bridge show https://mail.example/mcp send_email [options]"),
    # a command without a server says so, not "the server is named once"
    (["audit", "a.jsonl", "b.jsonl"], "unexpected argument 'b.jsonl' (usage: mcp-bridge audit PATH [options])"),
])
def test_usage_error_lines(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, argv: list[str],
                           line: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO('"text"'))
    code, out, err = _main(capsys, *argv)
    assert (code, out, err) == (ExitCode.USAGE, "", f"mcp-bridge: error: {line}\n")


def test_config_errors_name_the_file_and_the_entry(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"mcpServers": {"a": ')
    code, _, err = _main(capsys, "tools", "--config", str(bad_json))
    assert code == 1 and f"{bad_json}: invalid JSON at line 1" in err

    bad_entry = tmp_path / "entry.json"
    bad_entry.write_text(json.dumps({"mcpServers": {"a": {"url": "ftp://x"}}}))
    code, _, err = _main(capsys, "tools", "--config", str(bad_entry))
    assert code == 1 and f"{bad_entry}: mcpServers.a.url must start with http:// or https://" in err

    # ${VAR} without a default must be set; only the chosen server's variables matter.
    monkeypatch.delenv("BRIDGE_ROOT", raising=False)
    code, _, err = _main(capsys, "tools", "--config", str(CONFIG), "--server", "zoo")
    assert code == 1 and "environment variable BRIDGE_ROOT is not set in mcpServers.zoo.env.PYTHONPATH" in err

    monkeypatch.setenv("BRIDGE_ROOT", str(ROOT))
    code, _, err = _main(capsys, "tools", "--config", str(CONFIG), "--server", "zoo", "--transport", "http")
    assert code == 1 and "'zoo' in" in err and "is a stdio command; --transport http needs a URL" in err
    code, _, err = _main(capsys, "tools", "--config", str(CONFIG), "--server", "zoo", "--header", "X-A: b")
    assert code == 1 and "--header applies to HTTP and SSE servers" in err


def test_the_package_docstring_names_every_registered_command() -> None:
    import bridge.cli
    from bridge.cli.commands import COMMANDS

    assert [c.name for c in COMMANDS if f"``{c.name}``" not in (bridge.cli.__doc__ or "")] == []


def test_help_lists_every_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _main(capsys, "--help")
    assert code == 0
    listed = out[out.index("exit status:"):].splitlines()[1:]
    assert [line.split()[0] for line in listed if not line.startswith("       ")] == [str(int(c)) for c in ExitCode]
    assert "  6    the tools differ from the lock file" in out


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _main(capsys, "--help")
    assert code == 0 and "commands:" in out and "tools" in out and "exit status" in out
    code, out, _ = _main(capsys, "call", "--help")
    assert code == 0 and "--arg K=V" in out and "--output-dir" in out
    code, _, err = _main(capsys)
    assert code == ExitCode.USAGE and "usage: mcp-bridge" in err
    code, out, _ = _main(capsys, "--version")
    assert code == 0 and out.startswith("mcp-bridge ")


def test_secret_options_never_echoed_in_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    secret = "sk-live-0123456789abcdef"
    code, out, err = _main(capsys, "tools", f"http://127.0.0.1:1/mcp?api_key={secret}", "--env", f"TOKEN={secret}")
    assert code == 1 and secret not in out + err
    code, out, err = _main(capsys, "tools", "--header", f"Bearer {secret}", "http://127.0.0.1:1/mcp")
    assert code == 1 and secret not in out + err


# -- arguments -------------------------------------------------------------------------------------


def test_arg_values_are_json_where_they_parse_else_strings() -> None:
    schema = {"type": "object", "properties": {"code": {"type": "string"}, "maybe": {"type": ["string", "null"]},
                                               "n": {"type": "integer"}}}
    pairs = [pair(p) for p in ("n=5", "flag=true", "none=null", "list=[1, \"a\"]", "word=hello", "code=123456",
                               "maybe=null", "eq=a=b", "empty=")]
    assert parse_arguments(pairs, {"n": 1, "kept": "x"}, schema) == {
        "n": 5, "kept": "x", "flag": True, "none": None, "list": [1, "a"], "word": "hello",
        "code": "123456",  # a string property keeps the digits as typed
        "maybe": None,  # null is a valid value there
        "eq": "a=b", "empty": "",
    }


def test_args_object_from_file(tmp_path: Path) -> None:
    path = tmp_path / "args.json"
    path.write_text('{"to": ["a@b.example"], "n": 2}')
    assert load_args_object(f"@{path}") == {"to": ["a@b.example"], "n": 2}
    with pytest.raises(ConfigError, match="expected a JSON object, got string"):
        load_args_object('"x"')


# -- masking ---------------------------------------------------------------------------------------


def test_the_cli_masks_every_secret_spelling() -> None:
    mask = Output().mask
    mask.add(["s3cr3t-value", 'quo"te-secret', "pw"])
    assert mask("key=s3cr3t-value!") == f"key={MASK}!"
    assert mask(json.dumps({"v": 'quo"te-secret'})) == json.dumps({"v": MASK})
    assert mask("a pw b") == f"a {MASK} b"  # vetted values: short ones count too
    assert Output().mask("unchanged") == "unchanged"


def test_secrets_of_targets() -> None:
    stdio = StdioTarget("npx", ("-y", "x"), {"MULTIMAIL_API_KEY": "mm_live_abcdef", "DEBUG": "1"})
    assert stdio.secret_values() == ["mm_live_abcdef"]  # "1" is too short to hide without garbling output
    http = HttpTarget("https://u:pw-secret@h/mcp?token=tok-12345", "http",
                      {"Authorization": "Bearer abc-123456", "Accept": "application/json"})
    assert set(http.secret_values()) == {"Bearer abc-123456", "abc-123456", "pw-secret", "tok-12345"}
    assert header_secrets("Accept", "application/json") == []


# -- signatures as source --------------------------------------------------------------------------


def test_signature_source_for_awkward_names() -> None:
    schema = {"type": "object", "properties": {
        "from": {"type": "string", "description": "Sender."},
        "opts": {"type": "object", "properties": {"data-type": {"type": "string"}, "n": {"type": "integer"}},
                 "required": ["n"]},
        "note": {"type": ["string", "null"]}},
        "required": ["from"]}
    source = format_function("tool", compile_schema(schema, name="tool").signature)
    assert "    from_: str,  # Sender." in source
    assert "    note: str | None = OMIT," in source
    # A key that is no identifier only fits TypedDict's functional syntax.
    assert "ToolOpts = TypedDict('ToolOpts', {" in source
    assert "    'data-type': NotRequired[str]," in source
    assert "    'n': int," in source
    compile(source, "<signature>", "exec")  # it is valid Python (a stub)


def test_pretty_json_keeps_short_values_on_one_line() -> None:
    value = {"to": ["a@b.example"], "nested": {"k": 1}, "long": ["x" * 30, "y" * 30, "z" * 30]}
    text = pretty_json(value, width=60)
    assert '"to": ["a@b.example"],' in text and '"nested": {"k": 1},' in text
    assert json.loads(text) == value


# -- fidelity --------------------------------------------------------------------------------------


def _zoo_entries() -> dict[str, ToolEntry]:
    return {e.mcp_name: e for e in Catalogue(list(ZOO_TOOLS.values()))}


def _fidelity(entry: ToolEntry, parameters: Any = None) -> Any:
    model = {"name": entry.name, "description": entry.description,
             "parameters": dict(entry.input_schema) if parameters is None else parameters}
    return check_fidelity(entry, model, entry.compiled.signature)


LOSSLESS = {"defs_ref", "draft07_definitions", "any_of", "one_of", "type_arrays", "formats", "defaults",
            "numeric_bounds", "string_constraints", "closed_object", "open_object", "typed_map", "nested_objects",
            "array_of_objects", "vendor_keys", "header_routed", "empty_input", "nullable_clears", "echo_types",
            "validated_order", "a_b", "image_result", "stats"}


@pytest.mark.parametrize("name", sorted(LOSSLESS))
def test_fidelity_lossless(name: str) -> None:
    verdict = _fidelity(_zoo_entries()[name])
    assert verdict.lossless, verdict.differences


@pytest.mark.parametrize(("name", "pointer", "kind", "words"), [
    ("keyword_args", "/properties/from", "renamed", "'from' is a Python keyword"),
    ("keyword_args", "/properties/schema", "renamed", "taken by pydantic's BaseModel"),
    ("keyword_args", "/properties/data-type", "renamed", "not a Python identifier"),
    ("schema_word_props", "/properties/$ref", "renamed", "not a Python identifier"),
    ("all_of", "/allOf/0/properties/id", "missing", "only top-level 'properties'"),
    ("const_enum", "/properties/level", "widened", "enum values 3.5 cannot be a typing.Literal"),
    ("tree_recursive", "/$defs/node/properties/children/items", "recursive", "#/$defs/node refers back"),
    ("draft2020_keywords", "/properties/point/prefixItems", "widened", "positional item types"),
    ("files.read", "/name", "renamed", "found '.'"),
    ("a.b", "/name", "renamed", "a short hash keeps it apart"),
    ("café_menu", "/name", "renamed", "found 'é'"),
])
def test_fidelity_names_each_difference(name: str, pointer: str, kind: str, words: str) -> None:
    verdict = _fidelity(_zoo_entries()[name])
    assert not verdict.lossless
    found = {(d.pointer, d.kind): d.detail for d in verdict.differences}
    assert (pointer, kind) in found, verdict.differences
    assert words in found[(pointer, kind)]


def test_fidelity_reports_a_changed_model_schema_and_validation_only_keywords() -> None:
    entry = _zoo_entries()["string_constraints"]
    changed = json.loads(json.dumps(ZOO_SCHEMAS["string_constraints"]))
    changed["properties"]["sku"].pop("pattern")
    verdict = _fidelity(entry, changed)
    assert [(d.view, d.pointer, d.kind) for d in verdict.differences] == [
        ("model", "/properties/sku/pattern", "changed")]
    assert verdict.validated_keywords == ("maxLength", "minLength", "pattern")


def test_fidelity_untyped_schema() -> None:
    schema = {"type": "object", "anyOf": [{"properties": {"a": {"type": "string"}}}, {"properties": {}}]}
    tool = ZOO_TOOLS["empty_input"].model_copy(update={"name": "odd", "input_schema": schema})
    entry = ToolEntry.from_mcp(tool, "odd")
    verdict = check_fidelity(entry, {"name": "odd", "parameters": schema}, entry.compiled.signature)
    assert [(d.kind, d.pointer) for d in verdict.differences] == [("untyped", "")]
    assert "top-level anyOf" in verdict.differences[0].detail
    assert isinstance(entry.compiled.signature, inspect.Signature)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_spinner_only_on_a_terminal_stderr_and_never_on_stdout() -> None:
    out, err = io.StringIO(), _Terminal()
    output = Output(stdout=out, stderr=err)
    with output.status("Starting zoo…") as spinner:
        time.sleep(0.3)
        spinner.update("Calling progress… 2/3 step 2/3")
        time.sleep(0.3)
    assert "Starting zoo…" in err.getvalue() and "2/3 step 2/3" in err.getvalue() and out.getvalue() == ""
    piped = io.StringIO()
    with Output(stdout=out, stderr=piped).status("Starting zoo…") as spinner:
        spinner.update("Calling progress… 1/3")
    assert piped.getvalue() == ""


def test_server_text_is_never_markup() -> None:
    out = io.StringIO()
    output = Output(stdout=out)
    output.plain("[bold red]not a style[/] :smile: ")
    output.print(output.text("[link=http://x]y[/link]"))
    assert out.getvalue() == "[bold red]not a style[/] :smile: \n[link=http://x]y[/link]\n"


# -- what a failed start quotes from the server's stderr -------------------------------------------

_NPM_404 = """\
npm error code E404
npm error 404 Not Found - GET https://registry.npmjs.org/@scope%2fnope - Not found
npm error 404
npm error 404  '@scope/nope@*' is not in this registry.
npm error 404
npm error 404 Note that you can also install from a
npm error 404 tarball, folder, http url, or git url.
npm error A complete log of this run can be found in: /root/.npm/_logs/2025-01-01T00_00_00_000Z-debug-0.log
"""
_PY_TRACEBACK = """\
Traceback (most recent call last):
  File "<frozen runpy>", line 198, in _run_module_as_main
  File "/srv/server.py", line 3, in <module>
    import anyio
ModuleNotFoundError: No module named 'anyio'
"""
_NODE_THROW = """\
/srv/index.js:10
    throw new Error("API key missing: set FOO_KEY");
    ^

Error: API key missing: set FOO_KEY
    at Object.<anonymous> (/srv/index.js:10:11)

Node.js v22.12.0
"""


@pytest.mark.parametrize(("stderr", "lines", "tail"), [
    (_NPM_404, 5, "npm error code E404\n"
                  "npm error 404 Not Found - GET https://registry.npmjs.org/@scope%2fnope - Not found\n"
                  "npm error 404  '@scope/nope@*' is not in this registry."),
    (_PY_TRACEBACK, 5, "ModuleNotFoundError: No module named 'anyio'"),
    (_NODE_THROW, 5, "Error: API key missing: set FOO_KEY"),
    # nothing looks like an error: the last lines that are not noise
    ("starting\nloading config\n\nlistening on stdio\n", 2, "loading config\nlistening on stdio"),
    # more errors than lines: the first ones (the cause) and the last one (the final word)
    ("error: a\nerror: b\nerror: c\nerror: d\n", 3, "error: a\nerror: b\nerror: d"),
    ("error: a\nerror: b\n", 1, "error: b"),
])
def test_failed_start_quotes_the_stderr_lines_that_say_why(stderr: str, lines: int, tail: str) -> None:
    from bridge.transports import StderrCapture

    capture = StderrCapture()
    try:
        capture.file.write(stderr)
        assert capture.tail(lines=lines) == tail
    finally:
        capture.close()


def test_a_start_error_line_quotes_every_relevant_stderr_line() -> None:
    from bridge.cli.app import _message, _RunState

    tail = ("npm error code E404\nnpm error 404 Not Found - GET https://registry.npmjs.org/x\n"
            "npm error 404  'x@*' is gone.")
    err = ServerStartError("the server process exited while starting", server="npx", stderr_tail=tail)
    assert _message(err, _RunState()) == (
        "server 'npx': the server process exited while starting (stderr: npm error code E404 | npm error 404 Not "
        "Found - GET https://registry.npmjs.org/x | npm error 404  'x@*' is gone.)")


# -- targets: labels and the interpreter -----------------------------------------------------------


def test_an_http_server_is_labelled_by_host_port_and_path_never_by_its_secrets() -> None:
    assert resolve_target("http://127.0.0.1:3001/mcp").label == "127.0.0.1:3001/mcp"
    assert resolve_target("https://u:pw-secret@mail.example/v1/mcp/?api_key=k-123456").label == "mail.example/v1/mcp"
    assert resolve_target("https://mail.example/").label == "mail.example"
    assert resolve_target("https://mail.example/mcp", name="mail").label == "mail"


def test_the_core_loads_only_the_chosen_config_entries() -> None:
    # The CLI's --config --server goes through these: an unset ${VAR} of another entry is no error.
    environ = {"BRIDGE_ROOT": str(ROOT)}
    assert set(read_config(CONFIG)) == {"zoo", "multimail"}
    assert read_config(CONFIG)["zoo"]["env"] == {"PYTHONPATH": "${BRIDGE_ROOT}"}  # as written, not expanded
    (zoo,) = load_config(CONFIG, environ=environ, only=("zoo",)).values()
    assert isinstance(zoo, StdioTarget) and zoo.env == {"PYTHONPATH": str(ROOT)}
    with pytest.raises(ConfigError, match=r"MULTIMAIL_API_KEY is not set in mcpServers\.multimail"):
        load_config(CONFIG, environ=environ)
    with pytest.raises(ConfigError, match=r"no server 'multimial' in .*two_servers\.json; did you mean 'multimail'\?"):
        load_config(CONFIG, environ=environ, only=("multimial",))


def test_a_bare_python_command_is_the_running_interpreter(tmp_path: Path) -> None:
    assert resolve_target(["python", "-m", "pkg"]).command == sys.executable
    assert resolve_target("python3 server.py").command == sys.executable
    assert resolve_target(StdioTarget("python", ("x.py",))).command == sys.executable
    cfg = tmp_path / "mcp.json"
    cfg.write_text(json.dumps({"mcpServers": {"zoo": {"command": "python3", "args": ["-m", "zoo"]}}}))
    assert load_config(cfg)["zoo"].command == sys.executable  # type: ignore[union-attr]
    # Only the bare names: an explicit path or another version is run as given.
    for command in ("/usr/bin/python3", "python3.11", "./python", "pythonw"):
        assert resolve_target([command, "x.py"]).command == command


# -- arguments: every problem at once, values spelt as JSON ----------------------------------------


def test_argument_problems_name_every_argument_in_json_spelling() -> None:
    schema = {"type": "object", "properties": {
        "count": {"type": "integer"}, "flag": {"type": "boolean"}, "email": {"type": "string", "format": "email"},
        "mode": {"enum": ["a", "b"]}, "note": {"type": ["string", "null"]}},
        "required": ["count", "to"], "additionalProperties": False}
    problems = argument_problems(schema, {"count": True, "flag": "yes", "email": "bob", "mode": None,
                                          "note": False, "extra": 1})
    assert problems.message == (
        "7 invalid arguments: 'count': true is not of type \"integer\" (rule: type); "
        "'flag': \"yes\" is not of type \"boolean\" (rule: type); 'email': \"bob\" is not a \"email\" (rule: format); "
        "'mode': null is not one of [\"a\", \"b\"] (rule: enum); "
        "'note': false is not of type \"string\", \"null\" (rule: type); "
        "'extra': not an argument of this tool (rule: additionalProperties); "
        "'to': 'to' is a required property (rule: required)")
    lenient = {**schema, "required": ["count"]}
    one = argument_problems(lenient, {"count": 1, "flag": 0})
    assert one.message == "invalid argument 'flag': 0 is not of type \"boolean\" (rule: type)"
    assert (one.first.argument, one.first.rule) == ("flag", "type")
    assert not argument_problems(lenient, {"count": 1})
    # A $ref to the network is never fetched; the bridge's own check reports it.
    assert not argument_problems({"properties": {"a": {"$ref": "https://example.com/s.json"}}}, {"a": 1})


def test_a_quoted_argument_is_masked_before_it_is_cut() -> None:
    from bridge.secrets import known_secrets

    secret = "zq9-Secret-Value-4417-abcdefgh"
    known_secrets.add([secret])
    try:
        # Cut first, the quote would end in the secret's first half, which no mask recognises.
        value = "x" * 40 + secret
        message = argument_problems({"properties": {"note": {"type": "integer"}}}, {"note": value}).message
        assert "zq9-Secret" not in message and "***" in message, message
    finally:
        known_secrets.remove([secret])


def test_nested_problems_name_their_path() -> None:
    schema = ZOO_SCHEMAS["validated_order"]
    problems = argument_problems(schema, {"customer": "a@b.example",
                                          "items": [{"sku": "bad", "quantity": 0, "unit_price": 2}]})
    assert problems.message == (
        "2 invalid arguments: 'items[0].sku': \"bad\" does not match \"^[A-Z]{3}-\\\\d{4}$\" (rule: pattern); "
        "'items[0].quantity': 0 is less than the minimum of 1 (rule: minimum)")


# -- start-up: what --help loads -------------------------------------------------------------------


def test_help_imports_no_framework() -> None:
    """``mcp-bridge --help`` must answer at once: the CLI loads nothing heavy for it (measured
    beyond what ``import bridge`` itself loads)."""
    probe = ("import sys, bridge; before = set(sys.modules); from bridge.cli import main; main(['--help']); "
             "main(['call', '--help']); print(' '.join(sorted(set(sys.modules) - before)))")
    run = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = set(run.stdout.splitlines()[-1].split())
    heavy = {"mcp", "mcp_types", "jsonschema", "autogen_core", "autogen_agentchat", "sse_starlette", "rich",
             "anyio", "httpx2", "pydantic"}
    assert not {m.split(".")[0] for m in loaded} & heavy, sorted(loaded)


def test_listing_loads_no_validator() -> None:
    """``mcp-bridge tools`` only lists, so it never pays for jsonschema or jsonschema-rs: they load
    at a tool's first validation."""
    probe = ("import sys; from bridge.cli import main; "
             "status = main(['tools', '--', sys.executable, '-m', 'fixtures.schema_zoo']); "
             "print(status, sorted({m.split('.')[0] for m in sys.modules} & {'jsonschema', 'jsonschema_rs'}))")
    run = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.stdout.splitlines()[-1] == "0 []", (run.stdout[-500:], run.stderr[-500:])


def test_a_port_out_of_range_is_the_options_error(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from test_approvals_cli import submit

    submit(tmp_path / "approvals.db", "ops@example.com")  # a real store: the port is all that is wrong
    monkeypatch.setenv("MCP_BRIDGE_REVIEWERS", "alice " + "t" * 24)
    code = main(["approvals", "serve", "--store", str(tmp_path / "approvals.db"), "--port", "99999"])
    err = capsys.readouterr().err
    assert code == ExitCode.USAGE
    assert err == ("mcp-bridge: error: argument --port: a port is 0 to 65535 (0: any free port), got 99999 "
                   "(see 'mcp-bridge approvals --help')\n")


@pytest.mark.parametrize("limit", ["0", "-3"])
def test_a_find_limit_below_one_is_the_options_error(limit: str, capsys: pytest.CaptureFixture[str]) -> None:
    # Refused before any server starts (the command after -- would fail if it ran).
    code = main(["find", "mail", "--limit", limit, "--", "/nonexistent/server"])
    err = capsys.readouterr().err
    assert code == ExitCode.USAGE
    assert err.startswith(f"mcp-bridge: error: argument --limit: at least 1 match, got {int(limit)}"), err
