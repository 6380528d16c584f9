"""The official MCP conformance suite's client program, built on the bridge.

The suite (``npm @modelcontextprotocol/conformance``) starts a mock server per scenario and
runs ``<command> <server-url>`` with ``MCP_CONFORMANCE_SCENARIO``, ``MCP_CONFORMANCE_PROTOCOL_VERSION``
and, for some scenarios, ``MCP_CONFORMANCE_CONTEXT`` (JSON: OAuth client credentials, or
``toolCalls: [{name, arguments}]`` to make verbatim) in the environment. It grades what
reaches the mock server, so this program does what an application using the bridge does:
``connect(url, ...)``, ``server.tools()``, and ``MCPTool.run_json`` for every call, with
the bridge's own sampling / elicitation / roots callbacks and, for ``auth/*``, OAuth 2.1.

Per scenario (``SCENARIOS``; anything else gets ``call_every_tool``):

- ``json-schema-2020-12-preservation`` echoes the focal tool's AutoGen schema
  (``MCPTool.schema["parameters"]``), so it grades the bridge's lossless schema, not the SDK's;
- ``json-schema-ref-no-deref``: listing is the test (its mock implements no tools/call);
- a context with ``toolCalls`` (``http-custom-headers``) makes exactly those calls;
- otherwise every listed tool is called once with arguments built from its inputSchema.

Run one scenario by hand::

    .third_party/bin/conformance client --spec-version 2025-11-25 --scenario tools_call \\
        --command ".venv/bin/python tests/conformance/bridge_client.py"

``scripts/conformance.py`` runs them all. Exit status: 0 when the scenario's calls went
through (a tool's own ``isError`` result counts: grading it is the suite's job), 1 on any
exception, printed to stderr.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from autogen_core import CancellationToken
from autogen_core.models import ModelInfo
from autogen_ext.models.replay import ReplayChatCompletionClient

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from anywhere: the bridge is importable from the repo root
    sys.path.insert(0, str(ROOT))

from _shared import arguments_for, oauth_provider  # noqa: E402 - beside this script

from bridge import Server, ToolError, connect  # noqa: E402
from bridge.autogen import MCPTool  # noqa: E402
from bridge.callbacks import elicitation_from  # noqa: E402

_MODEL_INFO = ModelInfo(vision=False, function_calling=False, json_output=False, family="conformance",
                        structured_output=False)


@dataclass(frozen=True)
class Run:
    """One scenario as the suite described it in the environment."""

    url: str
    scenario: str
    version: str | None
    context: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_env(cls, url: str) -> Run:
        return cls(url=url, scenario=os.environ.get("MCP_CONFORMANCE_SCENARIO", ""),
                   version=os.environ.get("MCP_CONFORMANCE_PROTOCOL_VERSION"),
                   context=json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}"))

    @property
    def mode(self) -> str:
        # Dated versions up to 2025-11-25 speak the initialize handshake. For 2026-07-28 "auto"
        # (probe server/discover), not a version pin: only "auto" retries after a -32022
        # "Unsupported protocol version" rejection (the request-metadata scenario sends one).
        return "legacy" if self.version is not None and self.version <= "2025-11-25" else "auto"


# -- answers to server-initiated requests ----------------------------------------------------------


def with_defaults(message: str, schema: Mapping[str, Any]) -> dict[str, Any]:
    """Accept an elicitation form with every field's schema default (SEP-1034), nothing invented."""
    props = schema.get("properties") or {}
    return {name: prop["default"] for name, prop in props.items() if isinstance(prop, Mapping) and "default" in prop}


def model_client() -> ReplayChatCompletionClient:
    """Answers sampling requests: an AutoGen model client, as an application would pass one."""
    return ReplayChatCompletionClient(["conformance sampling answer"] * 8, model_info=_MODEL_INFO)


# -- OAuth 2.1 (auth/* scenarios) ------------------------------------------------------------------


# -- scenarios -------------------------------------------------------------------------------------


async def call(tool: MCPTool, arguments: Mapping[str, Any]) -> None:
    """One call the way AutoGen makes it (``run_json``); a tool's error result is reported, not fatal."""
    try:
        result = await tool.run_json(dict(arguments), CancellationToken())
        print(f"called {tool.mcp_name}: {str(result)[:200]!r}")
    except ToolError as e:
        print(f"called {tool.mcp_name}: tool error {e.detail[:200]!r}")


async def call_every_tool(server: Server, run: Run) -> None:
    tools = {tool.mcp_name: tool for tool in await server.tools()}
    requested = run.context.get("toolCalls")
    if requested:
        # Verbatim, as the suite asks: http-custom-headers sends ``null`` for an optional boolean
        # (the client must then omit its header), which MCPTool's jsonschema check would refuse
        # before sending. So these go through Server.call without validation.
        for spec in requested:
            result = await server.call(spec["name"], spec.get("arguments") or {}, validate=False)
            print(f"called {spec['name']} verbatim: is_error={result.is_error} {result.text[:200]!r}")
        return
    for tool in tools.values():
        await call(tool, arguments_for(tool.schema["parameters"]))


async def list_only(server: Server, run: Run) -> None:
    tools = await server.tools()
    print(f"listed {[tool.mcp_name for tool in tools]}")


async def echo_schema(server: Server, run: Run) -> None:
    """Send the focal tool's schema, as AutoGen sees it, back through the echo tool."""
    tools = {tool.mcp_name: tool for tool in await server.tools()}
    await call(tools["json_schema_echo"], {"schema": tools["json_schema_2020_12_tool"].schema["parameters"]})


Scenario = Callable[[Server, Run], Awaitable[None]]
SCENARIOS: dict[str, Scenario] = {
    "initialize": list_only,
    "json-schema-ref-no-deref": list_only,
    "json-schema-2020-12-preservation": echo_schema,
}


async def main_async(run: Run) -> None:
    auth = None
    if run.scenario.startswith("auth/"):
        auth = await oauth_provider(run.url, run.context, "autogen-mcp-bridge conformance")
    async with connect(run.url, mode=run.mode, timeout=30.0, call_timeout=30.0, name="conformance", auth=auth,
                       sampling=model_client(), elicitation=elicitation_from(with_defaults), roots=[ROOT]) as server:
        print(f"connected: protocol {server.info.protocol_version}, scenario {run.scenario}, mode {run.mode}")
        await SCENARIOS.get(run.scenario, call_every_tool)(server, run)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: bridge_client.py <server-url>  (the conformance suite appends it)", file=sys.stderr)
        return 2
    try:
        anyio.run(main_async, Run.from_env(argv[-1]))
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
