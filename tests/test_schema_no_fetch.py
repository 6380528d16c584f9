"""A ``$ref`` to a URL is never fetched: not when listing, typing, validating arguments, checking
structured content against an outputSchema, nor when the CLI shows or calls the tool.

The URL points at a live HTTP listener on 127.0.0.1 that serves a valid schema and counts every
request it gets, so a bridge that tried the fetch would be caught (a closed port would not tell).
"""

from __future__ import annotations

import http.server
import json
import re
import subprocess
import threading
import typing
import urllib.request
from collections.abc import Iterator

import pytest
from helpers import PY, ROOT, fixture_env, module_cmd

from bridge import InvalidArguments, ProtocolError, connect
from fixtures.schema_zoo import ZOO_TOOLS, remote_ref_tool

pytestmark = pytest.mark.anyio

ADDRESS_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


class _Counting(http.server.BaseHTTPRequestHandler):
    requests: typing.ClassVar[list[str]]

    def do_GET(self) -> None:
        self.requests.append(f"{self.command} {self.path}")
        body = json.dumps(ADDRESS_SCHEMA).encode()
        self.send_response(200)
        self.send_header("content-type", "application/schema+json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_HEAD = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def schema_host() -> Iterator[tuple[str, list[str]]]:
    """A URL serving a real schema, and the list of every request that reached it."""
    seen: list[str] = []
    handler = type("Handler", (_Counting,), {"requests": seen})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/address.json"
    try:
        # The listener itself works: a fetch would be counted.
        with urllib.request.urlopen(url, timeout=30) as answer:
            assert json.load(answer) == ADDRESS_SCHEMA
        assert seen == ["GET /address.json"]
        seen.clear()
        yield url, seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_url_ref_is_never_fetched_by_the_api(schema_host: tuple[str, list[str]], mode: str) -> None:
    url, seen = schema_host
    async with connect(module_cmd("fixtures.schema_zoo", "--remote-ref", url), env=fixture_env(), cwd=ROOT,
                       mode=mode) as server:
        tools = {t.mcp_name: t for t in await server.tools()}
        assert set(tools) == {*ZOO_TOOLS, "remote_ref"}
        tool = tools["remote_ref"]
        expected = remote_ref_tool(url)
        assert tool.schema["parameters"] == expected.input_schema  # the model sees the $ref as sent
        assert tool.output_schema == expected.output_schema
        assert tool.signature.parameters["address"].annotation is typing.Any  # untyped, not guessed

        # Validation cannot resolve it, and says so rather than fetching it.
        with pytest.raises(InvalidArguments) as unresolved:
            await server.call("remote_ref", {"address": {"city": "Paris"}})
        assert unresolved.value.rule == "$ref"
        assert str(unresolved.value) == (f"server 'fixtures.schema_zoo', tool 'remote_ref': cannot check arguments: "
                                         f"unresolvable $ref (Unresolvable: {url})")

        # Sent unvalidated, the server answers with structured content; checking it against an
        # outputSchema that $refs the URL fails the same way: unresolvable, not fetched.
        with pytest.raises(ProtocolError, match=rf"tool 'remote_ref': .*Unresolvable: {re.escape(url)}$"):
            await server.call("remote_ref", {"address": {"city": "Paris"}}, validate=False)
        assert (await server.call("text_blocks", {"count": 1})).text == "block 1 of 1"  # the session carries on
    assert seen == []


def test_a_url_ref_is_never_fetched_by_the_cli(schema_host: tuple[str, list[str]]) -> None:
    url, seen = schema_host
    zoo = ["--env", f"PYTHONPATH={ROOT}", "--", PY, "-m", "fixtures.schema_zoo", "--remote-ref", url]
    shown = subprocess.run([PY, "-m", "bridge.cli", "show", "remote_ref", "--json", *zoo], capture_output=True,
                           text=True, cwd=ROOT, timeout=120)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["tool"]["inputSchema"] == remote_ref_tool(url).input_schema
    called = subprocess.run([PY, "-m", "bridge.cli", "call", "remote_ref", "--args", '{"address": {"city": "X"}}',
                             *zoo], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert called.returncode == 1, called.stderr  # refused locally: the $ref cannot be checked
    assert called.stderr.splitlines() == [f"mcp-bridge: error: server 'fixtures.schema_zoo', tool 'remote_ref': cannot "
                                          f"check arguments: unresolvable $ref (Unresolvable: {url})"]
    assert seen == []
