"""A conformance-suite client built on the raw mcp SDK (no bridge), as a baseline.

The suite runs ``<command> <server-url>`` through ``sh -c`` (the command string is split on
spaces and the URL appended) with ``MCP_CONFORMANCE_SCENARIO`` (scenario name),
``MCP_CONFORMANCE_PROTOCOL_VERSION`` (always set: the ``--spec-version``, else the scenario's own
era) and, for some scenarios, ``MCP_CONFORMANCE_CONTEXT`` (JSON: OAuth credentials, or
``toolCalls: [{name, arguments}]`` to make verbatim) in the environment.

This client connects over Streamable HTTP (``mode="legacy"`` up to 2025-11-25, ``mode="auto"`` for
2026-07-28), lists every tool page, then makes the context's ``toolCalls`` if any, else calls each
tool once with arguments built from its inputSchema (defaults, else a placeholder per type).
Elicitation requests are accepted with the requested schema's defaults, sampling requests get a
canned answer, roots/list returns one root. For ``auth/*`` scenarios the HTTP client carries the
SDK's ``OAuthClientProvider`` (authorization code + PKCE, dynamic or pre-registered client, or a
client-metadata URL) whose redirect handler fetches the authorization URL headlessly and takes
``code``/``state``/``iss`` from the redirect. The extension grants (client credentials, enterprise,
DPoP, workload identity) are not implemented.

Run by hand::

    .third_party/bin/conformance client --spec-version 2025-11-25 --scenario tools_call \\
        --command ".venv/bin/python tests/conformance/raw_probe_client.py"

Exit status: 0 when the scenario's calls completed, 1 on any exception (printed to stderr).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import traceback
from typing import Any

import anyio
import httpx2
import mcp
from _shared import arguments_for, oauth_provider  # beside this script
from mcp import types
from mcp.client.streamable_http import streamable_http_client


async def on_elicit(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    schema = getattr(params, "requested_schema", None) or {}
    content = {k: v["default"] for k, v in (schema.get("properties") or {}).items() if "default" in v}
    return types.ElicitResult(action="accept", content=content)


async def on_sample(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    return types.CreateMessageResult(
        role="assistant", content=types.TextContent(type="text", text="ok"), model="raw-probe", stop_reason="endTurn"
    )


async def on_roots(context: Any) -> types.ListRootsResult:
    return types.ListRootsResult(roots=[types.Root(uri="file:///tmp", name="tmp")])


async def run(url: str) -> None:
    version = os.environ.get("MCP_CONFORMANCE_PROTOCOL_VERSION")
    # Dated versions up to 2025-11-25 use the initialize handshake. For 2026-07-28 "auto" (probe
    # server/discover) rather than the version pin: only "auto" retries after a -32022
    # "Unsupported protocol version" rejection (request-metadata scenario).
    mode = "legacy" if version is not None and version <= "2025-11-25" else "auto"
    context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
    async with contextlib.AsyncExitStack() as stack:
        target: Any = url
        if os.environ.get("MCP_CONFORMANCE_SCENARIO", "").startswith("auth/"):
            http = await stack.enter_async_context(httpx2.AsyncClient(
                auth=await oauth_provider(url, context, "raw-probe"), timeout=30.0))
            target = streamable_http_client(url, http_client=http)
        client = await stack.enter_async_context(
            mcp.Client(
                target,
                mode=mode,
                read_timeout_seconds=20.0,
                elicitation_callback=on_elicit,
                sampling_callback=on_sample,
                list_roots_callback=on_roots,
            )
        )
        print(f"connected protocol={client.protocol_version} scenario={os.environ.get('MCP_CONFORMANCE_SCENARIO')}")
        tools: list[types.Tool] = []
        cursor: str | None = None
        while True:
            page = await client.list_tools(cursor=cursor)
            tools += page.tools
            cursor = page.next_cursor
            if not cursor:
                break
        schemas = {tool.name: tool.input_schema for tool in tools}
        calls = [(c["name"], c.get("arguments") or {}) for c in context.get("toolCalls", [])]
        if os.environ.get("MCP_CONFORMANCE_SCENARIO") == "json-schema-ref-no-deref":
            return  # listing is the test; its mock server implements no tools/call
        if not calls:
            calls = [(name, arguments_for(schema)) for name, schema in schemas.items()]
        for name, args in calls:
            if name == "json_schema_echo":  # json-schema-2020-12-preservation: echo the focal schema
                args = {"schema": schemas.get("json_schema_2020_12_tool", {})}
            result = await client.call_tool(name, args)
            text = " ".join(c.text for c in result.content if isinstance(c, types.TextContent))
            print(f"called {name}: is_error={result.is_error} {text[:200]}")


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: raw_probe_client.py <server-url>", file=sys.stderr)
        return 2
    try:
        anyio.run(run, argv[-1])
    except BaseException:
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
