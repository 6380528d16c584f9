"""Targets, config parsing, naming, schema compilation and error translation: no processes needed."""

from __future__ import annotations

import asyncio
import inspect
import json
import sys
import typing
from pathlib import Path

import pytest
from autogen_core import CancellationToken
from autogen_core.tools import FunctionTool
from mcp.shared.exceptions import MCPError

import bridge
from bridge import CallTimeout, ConfigError, ConnectionLost, InvalidArguments, ProtocolError, ServerStartError
from bridge.catalogue import safe_names
from bridge.errors import translate
from bridge.schema import OMIT, compile_schema
from bridge.search import ToolIndex
from bridge.targets import HttpTarget, StdioTarget, load_config, parse_config, resolve_target
from bridge.tasks import linked_to

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

# -- targets ---------------------------------------------------------------------------


def test_url_means_http_and_sse_path_means_sse() -> None:
    assert resolve_target("http://127.0.0.1:9/mcp") == HttpTarget("http://127.0.0.1:9/mcp", "http")
    assert resolve_target("https://x.example/sse").transport == "sse"
    assert resolve_target("http://x.example/mcp", transport="sse").transport == "sse"


def test_command_string_and_list_mean_stdio() -> None:
    t = resolve_target("npx -y '@scope/server' --flag", env={"K": "v"}, cwd="/tmp")
    assert t == StdioTarget("npx", ("-y", "@scope/server", "--flag"), {"K": "v"}, "/tmp")
    assert resolve_target(["python", "-m", "pkg"]).label == "pkg"


@pytest.mark.parametrize(
    ("target", "kwargs", "needle"),
    [
        ("", {}, "empty server command"),
        ("http://x/mcp", {"transport": "stdio"}, "needs a command"),
        ("npx server", {"transport": "http"}, "needs an http(s) URL"),
        ("npx server", {"headers": {"A": "b"}}, "HTTP and SSE servers only"),
        ("http://x/mcp", {"env": {"A": "b"}}, "stdio commands only"),
        ("npx server", {"transport": "carrier-pigeon"}, "unknown transport"),
    ],
)
def test_bad_targets_say_what_to_fix(target: str, kwargs: dict[str, typing.Any], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        resolve_target(target, **kwargs)


def test_secrets_stay_out_of_repr_describe_and_config() -> None:
    stdio = StdioTarget("srv", ("--x",), {"API_KEY": "s3cr3t-env"})
    http = HttpTarget("https://h.example/mcp", "http", {"Authorization": "Bearer s3cr3t-tok", "X-Trace": "1"})
    for text in (repr(stdio), stdio.describe(), json.dumps(stdio.to_config()),
                 repr(http), http.describe(), json.dumps(http.to_config())):
        assert "s3cr3t" not in text
    assert stdio.to_config()["env"] == {"API_KEY": "${API_KEY}"}
    assert http.to_config()["headers"]["Authorization"].startswith("${")
    assert http.to_config()["headers"]["X-Trace"] == "1"


def test_config_file_with_vars_defaults_and_both_kinds(tmp_path: Path) -> None:
    cfg = tmp_path / "mcp.json"
    cfg.write_text(json.dumps({"mcpServers": {
        "mail": {"command": "python", "args": ["-m", "fixtures.multimail"],
                 "env": {"MULTIMAIL_API_KEY": "${MM_KEY}", "MODE": "${MM_MODE:-gated_send}"}, "cwd": "sub"},
        "remote": {"type": "sse", "url": "http://127.0.0.1:1/sse", "headers": {"Authorization": "Bearer ${TOK}"}},
        "vscode-style": {"type": "http", "url": "https://h.example/mcp"},
    }}))
    targets = load_config(cfg, environ={"MM_KEY": "k1", "TOK": "t2"})
    mail = targets["mail"]
    assert isinstance(mail, StdioTarget)
    assert mail.env == {"MULTIMAIL_API_KEY": "k1", "MODE": "gated_send"}
    assert mail.cwd == str(tmp_path / "sub") and mail.label == "mail"
    remote = targets["remote"]
    assert isinstance(remote, HttpTarget) and remote.transport == "sse"
    assert remote.headers["Authorization"] == "Bearer t2"
    assert targets["vscode-style"].transport == "http"


@pytest.mark.parametrize(
    ("doc", "needle"),
    [
        ([], "expected a JSON object"),
        ({"servers": []}, "no 'mcpServers' object"),
        ({"mcpServers": {}}, "is empty"),
        ({"mcpServers": {"a": {}}}, "mcpServers.a needs either 'command'"),
        ({"mcpServers": {"a": {"command": "x", "args": "nope"}}}, "mcpServers.a.args must be a list"),
        ({"mcpServers": {"a": {"url": "ftp://x"}}}, "must start with http"),
        ({"mcpServers": {"a": {"url": "http://x/mcp", "type": "grpc"}}}, "type 'grpc'"),
        ({"mcpServers": {"a": {"command": "x", "env": {"K": "${UNSET_VAR}"}}}}, "UNSET_VAR is not set"),
    ],
)
def test_malformed_configs_name_the_entry(doc: typing.Any, needle: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(doc, environ={})
    assert needle in str(err.value)
    assert "\n" not in str(err.value)


def test_a_disabled_config_entry_is_not_started(tmp_path: Path) -> None:
    doc = {"mcpServers": {"on": {"command": "x"}, "off": {"command": "y", "disabled": True},
                          "unset": {"command": "z", "disabled": False, "env": {"K": "${SET_VAR}"}}}}
    assert list(parse_config(doc, environ={"SET_VAR": "v"})) == ["on", "unset"]
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps(doc))
    assert list(load_config(path, environ={"SET_VAR": "v"})) == ["on", "unset"]
    with pytest.raises(ConfigError, match=r'server .off. in .* is disabled \("disabled": true\); remove that'):
        load_config(path, only=("off",))
    with pytest.raises(ConfigError, match=r"every server in 'mcpServers' is disabled"):
        parse_config({"mcpServers": {"off": {"command": "y", "disabled": True}}})
    with pytest.raises(ConfigError, match=r"mcpServers.off.disabled must be true or false"):
        parse_config({"mcpServers": {"off": {"command": "y", "disabled": "yes"}}})


def test_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{ nope")
    with pytest.raises(ConfigError, match="invalid JSON at line 1"):
        load_config(bad)


# -- naming ----------------------------------------------------------------------------


def test_safe_names_are_unique_deterministic_and_order_free() -> None:
    names = ["a.b", "a_b", "x" * 80, "x" * 81, "café", "with space", "ok-name", "日本語"]
    first = safe_names(names)
    assert first == safe_names(list(reversed(names)))
    assert len(set(first.values())) == len(names)
    assert first["a_b"] == "a_b" and first["ok-name"] == "ok-name"
    for value in first.values():
        assert 1 <= len(value) <= 64 and all(c.isalnum() or c in "_-" for c in value)
    prefixed = safe_names(["read.file"], prefix="my server")
    assert prefixed["read.file"] == "my_server_read_file"


# -- schema ----------------------------------------------------------------------------


def test_exotic_schemas_still_compile_and_keep_their_schema() -> None:
    weird = [
        {"type": "object", "anyOf": [{"required": ["a"]}, {"required": ["b"]}]},
        {"type": "object", "properties": {"x": {"$ref": "https://example.com/remote.json"}}},
        {"type": "object", "properties": {"x": {"type": "strnig"}}},  # an invalid schema
        {"type": "object", "properties": "not a mapping"},
        {"type": "object", "properties": {"n": {"$ref": "#/$defs/n"}}, "$defs": {"n": {"$ref": "#/$defs/n"}}},
        {"type": "object"},
        {},
        {"type": "object", "additionalProperties": {"type": "integer"}},
    ]
    for schema in weird:
        compiled = compile_schema(schema, name="odd")
        assert compiled.schema is schema
        inspect.signature(lambda: None).replace(parameters=list(compiled.signature.parameters.values()))
    assert not compile_schema(weird[0]).typed


def test_only_a_schema_that_cannot_be_typed_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    # A tool without arguments ({"type": "object"}) is exactly (**arguments): no warning for it.
    with caplog.at_level("WARNING", logger="bridge.schema"):
        assert compile_schema({"type": "object"}, name="ping").parameters == ()
        assert not compile_schema({"type": "object", "anyOf": [{"required": ["a"]}]}, name="odd").typed
    assert [r.getMessage().split(":")[0] for r in caplog.records] == ["tool 'odd'"]


def test_remote_refs_are_never_fetched() -> None:
    compiled = compile_schema({"type": "object", "properties": {"x": {"$ref": "http://127.0.0.1:9/never.json"}}})
    with pytest.raises(InvalidArguments, match="unresolvable"):
        compiled.validate({"x": 1})


def test_validation_messages_name_argument_and_rule() -> None:
    compiled = compile_schema({
        "type": "object", "additionalProperties": False, "required": ["to"],
        "properties": {
            "to": {"type": "array", "items": {"type": "string", "format": "email"}},
            "filter": {"type": "object", "properties": {"limit": {"type": "integer", "minimum": 1}}},
            "when": {"type": "string", "format": "date-time"},
            "site": {"type": "string", "format": "uri"},
        },
    })
    cases = [
        ({"to": ["ok@example.com", "nope"]}, "to[1]", "format"),
        ({"to": [], "filter": {"limit": 0}}, "filter.limit", "minimum"),
        ({}, "to", "required"),
        ({"to": [], "extra": 1}, "", "additionalProperties"),
        ({"to": [], "when": "yesterday"}, "when", "format"),
        ({"to": [], "site": "not a uri"}, "site", "format"),
    ]
    for args, argument, rule in cases:
        with pytest.raises(InvalidArguments) as err:
            compiled.validate(args)
        assert (err.value.argument, err.value.rule) == (argument, rule), args
    compiled.validate({"to": ["a@b.co"], "filter": {"limit": 3}, "when": "2026-01-01T00:00:00Z"})


@pytest.mark.parametrize(("schema", "arguments", "rule"), [
    # jsonschema's float arithmetic refuses 0.3 as a multiple of 0.1; jsonschema-rs accepts it.
    ({"properties": {"x": {"multipleOf": 0.1}}}, {"x": 0.3}, "multipleOf"),
    # ECMA-262's \s matches U+FEFF, Python's does not.
    ({"properties": {"x": {"type": "string", "pattern": "^\\s+$"}}}, {"x": "\ufeff"}, "pattern"),
    ({"patternProperties": {"^\\s+$": {"type": "integer"}}}, {"\ufeff": 1}, "additionalProperties"),
    # A reference cycle that consumes no input: jsonschema-rs accepts, jsonschema reports it.
    ({"$defs": {"A": {"anyOf": [{"$ref": "#/$defs/B"}]}, "B": {"allOf": [{"$ref": "#/$defs/A"}]}},
      "properties": {"x": {"$ref": "#/$defs/A"}}}, {"x": 1}, "$ref"),
    ({"$defs": {"A": {"dependentSchemas": {"x": {"$ref": "#/$defs/A"}}}}, "$ref": "#/$defs/A"}, {"x": 1}, "$ref"),
    # Formats are jsonschema's own checks (and the bridge's stricter e-mail rule), on both paths.
    ({"properties": {"x": {"type": "string", "format": "email"}}}, {"x": "maria@localhost"}, "format"),
])
def test_jsonschema_decides_where_the_fast_validator_would_disagree(schema: dict[str, typing.Any],
                                                                     arguments: dict[str, typing.Any],
                                                                     rule: str) -> None:
    compiled = compile_schema({"type": "object", **schema, "additionalProperties": rule != "additionalProperties"})
    with pytest.raises(InvalidArguments) as err:
        compiled.validate(arguments)
    assert err.value.rule == rule


def test_plain_schemas_get_the_fast_validator_and_it_agrees() -> None:
    compiled = compile_schema({"type": "object", "required": ["to"], "properties": {
        "to": {"type": "array", "items": {"type": "string", "format": "email"}, "minItems": 1},
        "tree": {"$ref": "#/$defs/Node"}}, "$defs": {"Node": {"type": "object", "properties": {
            "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}}}})
    compiled.validate({"to": ["a@b.co"], "tree": {"children": [{"children": []}]}})
    assert compiled._fast is not None  # a recursive tree consumes input: jsonschema-rs may answer
    for bad in ({"to": []}, {"to": ["nope"]}, {"to": ["a@b.co"], "tree": {"children": [1]}}):
        with pytest.raises(InvalidArguments):
            compiled.validate(bad)


def test_generated_function_is_a_working_functiontool() -> None:
    schema = {"type": "object", "required": ["from"], "properties": {
        "from": {"type": "string", "description": "sender"},
        "model_config": {"type": "integer"},
        "tags": {"type": "object", "additionalProperties": {"type": "string"}},
        "kind": {"enum": ["a", "b"]},
        "maybe": {"type": ["string", "null"]},
    }}
    compiled = compile_schema(schema, name="t")

    async def fn(**kwargs: typing.Any) -> None:
        return None

    fn.__signature__ = compiled.signature  # type: ignore[attr-defined]
    fn.__annotations__ = compiled.annotations
    tool = FunctionTool(fn, description="d", name="t")  # AutoGen can model our signature
    assert set(tool.args_type().model_fields) == {"from_", "model_config_", "tags", "kind", "maybe"}
    assert compiled.to_wire({"from_": "x", "maybe": None, "kind": OMIT}) == {"from": "x", "maybe": None}
    with pytest.raises(InvalidArguments, match="unexpected keyword argument"):
        compiled.to_wire({"nope": 1})


# -- errors ----------------------------------------------------------------------------


def test_translate_maps_foreign_failures_to_one_line_bridge_errors() -> None:
    import anyio

    cases: list[tuple[BaseException, type[bridge.BridgeError], bool]] = [
        (MCPError(-32001, "Request timed out"), CallTimeout, False),
        (MCPError(-32000, "Connection closed"), ConnectionLost, False),
        (MCPError(-32602, "bad params"), ProtocolError, False),
        (FileNotFoundError(2, "No such file", "no-such-cmd"), ServerStartError, True),
        (ExceptionGroup("g", [ExceptionGroup("h", [MCPError(-32000, "Connection closed")])]), ConnectionLost, False),
        (anyio.ClosedResourceError(), ConnectionLost, False),
        (ConnectionRefusedError(111, "refused"), bridge.ServerUnreachable, True),
        (TimeoutError(), CallTimeout, True),
        (ValueError("odd"), ProtocolError, False),
    ]
    for exc, kind, connecting in cases:
        err = translate(exc, server="srv", tool="t", timeout=1.0, connecting=connecting)
        assert isinstance(err, kind), (exc, err)
        assert "\n" not in str(err) and "srv" in str(err)


ROOT_MEMBERS = {
    "connect", "Server", "ServerGroup", "open_servers", "Options", "Guards", "Toolset", "CallResult",
    "ApprovalPolicy", "AutoApprove", "AutoDeny", "CallbackApprover", "ConsoleApprover", "ToolFilter", "LockFile",
    "ServerRequestGuard",
    "open_audit_log", "__version__",
    "BridgeError", "ConfigError", "ConnectError", "ServerStartError", "ServerUnreachable", "AuthError",
    "ConnectionLost", "ProtocolError", "CallTimeout", "ToolNotFound", "InvalidArguments", "ToolError",
    "CatalogueDrift",
}


def test_the_root_exports_a_small_deliberate_set() -> None:
    assert set(bridge.__all__) == ROOT_MEMBERS
    public = {n for n in vars(bridge) if not n.startswith("_") and not inspect.ismodule(getattr(bridge, n))}
    assert public <= ROOT_MEMBERS | {"annotations"}, public - ROOT_MEMBERS


def test_public_surface_is_exported_and_documented() -> None:
    for name in bridge.__all__:
        obj = getattr(bridge, name)
        is_alias = typing.get_origin(obj) is not None  # e.g. Handler = Callable[...]; a class on 3.10
        if (inspect.isclass(obj) or inspect.isfunction(obj)) and not is_alias:
            assert obj.__doc__, f"{name} lacks a docstring"


# -- results ---------------------------------------------------------------------------


def test_structured_content_is_shown_once() -> None:
    import mcp_types as types

    from bridge.results import render

    def text(t: str) -> types.TextContent:
        return types.TextContent(type="text", text=t)

    # Mirrored as JSON text: the compact JSON alone.
    assert render([text('{\n  "a": 1\n}')], {"a": 1}) == '{"a":1}'
    # Wrapped as {"content": <the text>} (server-filesystem): the text alone.
    assert render([text("hello fs")], {"content": "hello fs"}) == "hello fs"
    assert render([text('[{"name": "x"}]')], {"entities": [{"name": "x"}]}) == '[{"name": "x"}]'
    # Different data: both, text first.
    assert render([text("summary")], {"a": 1}) == 'summary\n{"a":1}'
    assert render([], {"a": 1}) == '{"a":1}'
    long = render([text("x" * 50)], None, max_chars=10)
    assert long.startswith("x" * 10) and "truncated: showing 10 of 50 characters" in long


def test_the_args_model_is_built_on_first_use() -> None:
    import mcp_types as types

    from bridge.autogen.tool import MCPTool
    from bridge.catalogue import Catalogue
    from bridge.registry import ServerSpec
    from bridge.toolset import Toolset

    tool_def = types.Tool(name="odd", input_schema={"type": "object", "properties": {"from": {"enum": [1.5, "a"]}}})
    toolset = Toolset(ServerSpec(name="x", target={"command": "true"}))  # never connected: nothing here does I/O
    tool = MCPTool(toolset, next(iter(Catalogue([tool_def]))))
    assert tool._args_model is None  # conversion did not pay for a pydantic model
    assert tool.schema["parameters"] == tool_def.input_schema
    assert set(tool.args_type().model_fields) == {"from_"}
    assert tool.args_type() is tool.args_type()


# -- cancellation tokens -----------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_token_cancels_the_block_it_runs_and_subscribes_once() -> None:
    token = CancellationToken()
    for _ in range(3):
        async with linked_to(token, "call"):
            await asyncio.sleep(0)
    assert len(token._callbacks) == 1  # one relay, however many calls the token serves

    async def cancel_soon() -> None:
        await asyncio.sleep(0.01)
        token.cancel()

    canceller = asyncio.ensure_future(cancel_soon())
    with pytest.raises(asyncio.CancelledError, match="call cancelled by its cancellation token"):
        async with linked_to(token, "call"):
            await asyncio.sleep(30)
    await canceller
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0  # the caller is not left half-cancelled
    await asyncio.sleep(0)  # and nothing is pending for its next await
    with pytest.raises(asyncio.CancelledError):  # a cancelled token sends nothing more
        linked_to(token, "call")


@pytest.mark.anyio
async def test_a_token_cancelled_as_the_block_ends_still_cancels_it_and_nothing_leaks() -> None:
    token = CancellationToken()
    with pytest.raises(asyncio.CancelledError):
        async with linked_to(token, "call"):
            token.cancel()  # no await after it: the cancellation has not landed when the block ends
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0
    await asyncio.sleep(0)  # would raise if the cancellation were still pending


# -- tool search -------------------------------------------------------------------------------


def test_search_reads_a_name_after_called_as_a_name_and_weighs_words_by_their_meaning() -> None:
    def tool(name: str, description: str) -> tuple[str, str, None, str, dict[str, typing.Any]]:
        return (name, name, None, description, {"type": "object"})

    index = ToolIndex([
        tool("create_directory", "Create a new directory."),
        tool("create_mailbox", "Open a new mailbox: the first call issues a code, the second call creates it."),
        tool("decide_email", "Approve or reject a held email."),
        tool("cancel_message", "Cancel a scheduled message before it is sent."),
        *(tool(f"{verb}_email", f"{verb.capitalize()} an email.") for verb in ("send", "read", "tag", "forward")),
    ])
    # "called" is filler (Porter would make it "call", which create_mailbox says twice).
    assert index.search("make a new folder called archive", 1) == ["create_directory"]
    # "message" is literally rare here, but means "email", which every other tool says.
    assert index.search("approve the held outgoing message", 1) == ["decide_email"]
