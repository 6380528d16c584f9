"""The bridge introduces itself: its own name and version in ``clientInfo``, as a real server sees it.

``fixtures.task_server``'s ``whoami`` tool answers with the ``clientInfo`` the SDK server recorded
(the 2025-11-25 handshake's, or the 2026-07-28 per-request ``_meta`` one) and, over HTTP, the
``Mcp-Method``/``Mcp-Name`` headers the 2026-07-28 protocol asks every request to carry.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from importlib.metadata import version

import pytest
from helpers import http_server

from bridge import connect

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with http_server("fixtures.task_server") as served:
        yield served


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_the_server_sees_the_bridges_name_and_version(url: str, mode: str) -> None:
    async with connect(url, mode=mode) as server:
        seen = json.loads((await server.call("whoami")).text)
    info = seen["clientInfo"]
    assert (info["name"], info["version"]) == ("autogen-mcp-bridge", version("autogen-mcp-bridge"))
    assert info["title"] == "mcp-bridge"
    if mode == "auto":  # 2026-07-28 over HTTP: the method and the tool's name ride in headers too
        assert (seen["mcp-method"], seen["mcp-name"]) == ("tools/call", "whoami")
