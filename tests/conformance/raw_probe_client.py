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
from mcp import types
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

REDIRECT_URI = "http://localhost:3000/callback"

_PLACEHOLDER = {"string": "x", "number": 1, "integer": 1, "boolean": True, "array": [], "object": {}}


def arguments_for(schema: dict[str, Any]) -> dict[str, Any]:
    """Arguments for every property: its default, else its first enum value, else a placeholder."""
    args: dict[str, Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        if not isinstance(prop, dict):
            continue
        if "default" in prop:
            args[name] = prop["default"]
        elif prop.get("enum"):
            args[name] = prop["enum"][0]
        else:
            kind = prop.get("type")
            kind = next((k for k in kind if k != "null"), "string") if isinstance(kind, list) else kind
            args[name] = _PLACEHOLDER.get(kind or "string", "x")
    return args


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


class MemoryTokens(TokenStorage):
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class HeadlessBrowser:
    """Plays the user agent: GET the authorization URL, read the code from the redirect."""

    def __init__(self) -> None:
        self.result: AuthorizationCodeResult | None = None

    async def redirect(self, authorization_url: str) -> None:
        from urllib.parse import parse_qs, urlparse

        async with httpx2.AsyncClient() as http:
            response = await http.get(authorization_url, follow_redirects=False)
        location = response.headers.get("location")
        if location is None:
            raise RuntimeError(f"authorization endpoint answered {response.status_code} without a redirect")
        query = {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}
        if "code" not in query:
            raise RuntimeError(f"no code in redirect {location}")
        self.result = AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))

    async def callback(self) -> AuthorizationCodeResult:
        if self.result is None:
            raise RuntimeError("callback before redirect")
        result, self.result = self.result, None
        return result


async def oauth_for(url: str, context: dict[str, Any]) -> OAuthClientProvider:
    storage = MemoryTokens()
    if context.get("client_id"):
        await storage.set_client_info(
            OAuthClientInformationFull(
                client_id=context["client_id"],
                client_secret=context.get("client_secret"),
                redirect_uris=[REDIRECT_URI],
                token_endpoint_auth_method="client_secret_basic" if context.get("client_secret") else "none",
            )
        )
    browser = HeadlessBrowser()
    return OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name="raw-probe",
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
        ),
        storage=storage,
        redirect_handler=browser.redirect,
        callback_handler=browser.callback,
        client_metadata_url="https://conformance-test.local/client-metadata.json",
    )


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
            http = await stack.enter_async_context(httpx2.AsyncClient(auth=await oauth_for(url, context), timeout=30.0))
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
