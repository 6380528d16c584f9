"""A real MCP server that requires a bearer token (the schema zoo behind ``--require-token``) refusing
a wrong or missing one: ``AuthError`` from the API, exit status 3 from the CLI, and the token in
neither. The right token gets through the same server, so the refusal is about the token alone."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator

import pytest
from helpers import PY, ROOT, http_server
from leaks import leak_checked

from bridge import AuthError, connect
from fixtures.schema_zoo import ZOO_TOOLS

pytestmark = pytest.mark.anyio

TOKEN = "zoo-bearer-4c1d9e7f2a6b8035"
WRONG = "zoo-bearer-0000000000000000"
ERAS = ["auto", "legacy"]


@pytest.fixture(scope="module", params=["http", "sse"])
def gated_zoo(request: pytest.FixtureRequest) -> Iterator[str]:
    with http_server("fixtures.schema_zoo", "--require-token", TOKEN, transport=request.param) as url:
        yield url


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("mode", ERAS)
async def test_the_right_token_gets_the_whole_catalogue(gated_zoo: str, mode: str) -> None:
    async with leak_checked(connect(gated_zoo, mode=mode, headers=bearer(TOKEN), timeout=30)) as server:
        assert {t.mcp_name for t in await server.tools()} == set(ZOO_TOOLS)
        assert (await server.call("text_blocks", {"count": 1})).text == "block 1 of 1"


@pytest.mark.parametrize("mode", ERAS)
@pytest.mark.parametrize("headers", [bearer(WRONG), {}], ids=["wrong-token", "no-token"])
async def test_a_refused_token_is_an_auth_error(gated_zoo: str, mode: str, headers: dict[str, str]) -> None:
    with pytest.raises(AuthError) as refused:
        async with leak_checked(connect(gated_zoo, mode=mode, headers=headers, timeout=30, name="zoo")):
            pass
    assert str(refused.value) == ("server 'zoo': authentication refused (HTTP 401); check the Authorization/API-key "
                                  "header")
    assert WRONG not in repr(refused.value)


def mcp_bridge(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PY, "-m", "bridge.cli", *argv], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_the_cli_exits_3_on_a_refused_token_and_0_on_the_right_one(gated_zoo: str) -> None:
    refused = mcp_bridge("tools", gated_zoo, "--header", f"Authorization: Bearer {WRONG}")
    assert refused.returncode == 3, refused.stderr
    assert refused.stdout == ""
    (line,) = refused.stderr.splitlines()
    # The label is derived from the URL; the rest is the promise.
    assert re.fullmatch(r"mcp-bridge: error: server '127\.0\.0\.1[^']*': authentication refused \(HTTP 401\); "
                        r"check the Authorization/API-key header", line), line
    assert WRONG not in refused.stderr

    accepted = mcp_bridge("tools", gated_zoo, "--json", "--header", f"Authorization: Bearer {TOKEN}")
    assert accepted.returncode == 0, accepted.stderr
    assert json.loads(accepted.stdout)["toolCount"] == len(ZOO_TOOLS)
    assert TOKEN not in accepted.stdout + accepted.stderr
