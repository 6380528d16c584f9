"""Server resources: listed, read bounded, scoped to what the server offers, and for agents a guarded,
audited ``read_resource`` tool; against ``fixtures.content_server`` (hostile entries included), whose
own log (``CONTENT_LOG``) proves which reads reached it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from helpers import http_server

from bridge import InvalidArguments, Server, connect
from bridge.cli.app import main as cli_main
from bridge.published import template_pattern, unsafe_uri
from fixtures.content_server import HUGE_CHARS, LOGO


@pytest.fixture(scope="module")
def content(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """One content server over Streamable HTTP per module, and the log of the reads it served."""
    log = tmp_path_factory.mktemp("content") / "requests.log"
    log.touch()
    with http_server("fixtures.content_server", env={"CONTENT_LOG": str(log),
                                                     "CONTENT_TOKEN": "tok-6f1c2d9e8b7a"}) as url:
        yield url, log


def served(log: Path) -> list[str]:
    return log.read_text().splitlines()


def session(url: str) -> Server:
    return connect(url, name="content")


def test_listing_reading_and_bounds(content: tuple[str, Path]) -> None:
    url, _ = content

    async def go() -> None:
        async with connect(url, name="content", max_result_chars=5_000) as server:
            uris = [r.uri for r in await server.resources()]
            assert uris[:4] == ["docs://guide", "docs://token", "docs://huge", "docs://logo.png"]
            assert [t.uri_template for t in await server.resource_templates()] == ["docs://notes/{id}"]
            guide = await server.read_resource("docs://guide")
            assert guide.text == "[resource <docs://guide>]\nHow to use the docs: read the guide first."
            assert (await server.read_resource("docs://notes/42")).text.endswith("note 42")
            huge = await server.read_resource("docs://huge")
            assert len(huge.contents[0].text) == HUGE_CHARS  # type: ignore[union-attr]
            assert len(huge.text) < 5_200 and huge.text.endswith(
                f"[truncated: showing 5,000 of {HUGE_CHARS + len('[resource <docs://huge>]') + 1:,} characters of the "
                "resource]")
            logo = await server.read_resource("docs://logo.png")
            assert logo.text == f"[resource <docs://logo.png>: image/png, {len(LOGO) / 1024:.1f} KB]"

    anyio.run(go)


@pytest.mark.parametrize("uri", ["docs://files/../../etc/passwd", "docs://unlisted", "docs://notes/%2e%2e/x",
                                 "docs://notes/%252E%252E/x", "file:///etc/passwd", "docs://guide/.."])
def test_a_uri_outside_the_offer_is_refused_without_a_request(content: tuple[str, Path], uri: str) -> None:
    url, log = content

    async def go() -> None:
        async with session(url) as server:
            with pytest.raises(InvalidArguments, match="refused to read") as refused:
                await server.read_resource(uri)
            assert refused.value.argument == "uri" and "\n" not in str(refused.value)

    anyio.run(go)
    # Listed or not, nothing of it was asked of the server (the listed '..' URI included).
    assert not [line for line in served(log) if line == f"resources/read {uri}"]


def test_the_resource_globs_are_a_guard_like_any_other() -> None:
    from bridge import Guards

    guards = Guards(resources="docs://*")
    assert guards.resources == ("docs://*",)
    assert Guards.from_config(json.loads(json.dumps(guards.to_config()))).resources == ("docs://*",)
    assert "resources" not in Guards().to_config()


def test_uri_checks() -> None:
    assert unsafe_uri("docs://a/%2E%2e/b") and unsafe_uri("x://a\\..\\b") and unsafe_uri("docs://a\x1b[2J")
    assert unsafe_uri("docs://a/..b/c") is None and unsafe_uri("docs://a/b?q=..") is None
    notes = template_pattern("docs://notes/{id}{?page}")
    assert notes.fullmatch("docs://notes/7") and notes.fullmatch("docs://notes/7?page=2")
    assert not notes.fullmatch("docs://notes/7/8") and not notes.fullmatch("docs://other/7")
    assert template_pattern("file:///{+path}").fullmatch("file:///a/b/c.txt")


def test_the_read_resource_tool_is_opt_in_scoped_and_audited(content: tuple[str, Path], tmp_path: Path) -> None:
    url, log = content
    audit = tmp_path / "audit.jsonl"

    async def go() -> None:
        async with session(url) as server:
            plain = server.toolset("plain", approval=False, warn_unguarded=False)
            assert "read_resource" not in [e.name for e in await plain.tools()]
            toolset = server.toolset("reader", approval=False, warn_unguarded=False, resources=["docs://*"],
                                     audit=str(audit))
            (tool,) = [e for e in await toolset.tools() if e.name == "read_resource"]
            assert "- docs://guide (The guide, text/plain)" in tool.description
            assert "docs://notes/{id}" in tool.description and "etc/passwd" not in tool.description
            assert "\x1b" not in tool.description  # the hostile name is escaped
            assert tool.annotations.read_only
            result = await toolset.call("read_resource", {"uri": "docs://notes/9"}, call_id="c-read")
            assert result.text.endswith("note 9") and not result.is_error
            with pytest.raises(InvalidArguments, match="neither lists"):
                await toolset.call("read_resource", {"uri": "docs://notes-unlisted"}, call_id="c-out")
            narrow = server.toolset("narrow", approval=False, warn_unguarded=False, resources=["docs://notes/*"])
            with pytest.raises(InvalidArguments, match="outside this agent's resources"):
                await narrow.call("read_resource", {"uri": "docs://guide"})
            assert "docs://guide" not in (await narrow.tools())[-1].description
            await toolset.stop()

    anyio.run(go)
    assert "resources/read docs://notes/9" in served(log)
    assert "resources/read docs://notes-unlisted" not in served(log)
    records = [json.loads(line) for line in audit.read_text().splitlines()]
    shape = {(r["agent"], r["server"], r["tool"], r["arguments"]["uri"], r["outcome"], r["call_id"])
             for r in records if r.get("phase") != "started"}
    assert shape == {("reader", "content", "resources/read", "docs://notes/9", "ok", "c-read"),
                     ("reader", "content", "resources/read", "docs://notes-unlisted", "refused", "c-out")}, shape


@pytest.mark.parametrize("mode", ["auto", "legacy"])  # a subscriptions/listen event, a legacy notification
def test_list_changed_keeps_the_tool_current(content: tuple[str, Path], mode: str) -> None:
    url, _ = content

    async def go() -> None:
        async with connect(url, name="content", mode=mode) as server:
            toolset = server.toolset("reader", approval=False, warn_unguarded=False, resources=["docs://*"])
            assert f"docs://fresh-{mode}" not in (await toolset.tools())[-1].description
            await server.call("publish", {"uri": f"docs://fresh-{mode}", "text": "just published"})
            with anyio.fail_after(10):
                while f"docs://fresh-{mode}" not in (await toolset.tools())[-1].description:
                    await anyio.sleep(0.05)
            result = await toolset.call("read_resource", {"uri": f"docs://fresh-{mode}"})
            assert result.text.endswith("just published")
            assert server.info.protocol_version == ("2025-11-25" if mode == "legacy" else "2026-07-28")

    anyio.run(go)


def test_cli_lists_and_reads_safely(content: tuple[str, Path], capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from bridge.cli import main

    url, log = content
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["resources", url]) == 0
    out = capsys.readouterr().out
    assert "docs://guide" in out and "docs://notes/{id}" in out and "\x1b" not in out
    assert "\\x1b[2J" in out and max(len(line) for line in out.splitlines()) <= 80
    assert main(["read", url, "docs://escapes"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out and "\\x1b]0;pwned" in out
    assert "Possible prompt injection in the resource" in out and "RIGHT-TO-LEFT OVERRIDE" in out
    # A secret given to the bridge is masked by value wherever the server quotes it.
    assert main(["read", url, "docs://token", "--header", "X-Api-Key: tok-6f1c2d9e8b7a"]) == 0
    out = capsys.readouterr().out
    assert "token=" in out and "tok-6f1c2d9e8b7a" not in out
    assert main(["read", url, "docs://logo.png"]) == 0
    assert capsys.readouterr().out.strip() == f"[resource <docs://logo.png>: image/png, {len(LOGO) / 1024:.1f} KB]"
    assert main(["read", url, "docs://files/../../etc/passwd"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'..'" in err and "resources/read docs://files" not in "".join(served(log))


def test_adapters_see_the_tool_as_read_only_on_its_server(content: tuple[str, Path]) -> None:
    from bridge import AutoApprove
    from bridge.agent_framework import tools_for as af_tools
    from bridge.autogen import tools_for as autogen_tools

    url, _ = content

    async def go() -> None:
        async with session(url) as server:
            guards = {"approver": AutoApprove(), "resources": ["docs://*"]}
            # Read-only: the default policy asks nobody, Agent Framework's own approval included.
            (af,) = [t for t in await af_tools(server, agent="a", **guards) if t.name == "read_resource"]
            assert af.approval_mode == "never_require"
            (tool,) = [t for t in await autogen_tools(server, agent="a", **guards) if t.name == "read_resource"]
            assert tool.connection is server

    anyio.run(go)


def test_under_a_lock_the_tool_shows_the_model_nothing_the_server_wrote(content: tuple[str, Path],
                                                                        tmp_path: Path) -> None:
    # A lock pins tools and instructions, not resource listings: their names and URIs must not
    # reach the model through the read_resource description, though reads still work.
    url, _ = content
    lock = tmp_path / "mcp-tools.lock"
    assert cli_main(["lock", "-o", str(lock), url]) == 0

    async def go() -> None:
        async with connect(url, name="content", lock=str(lock)) as server:
            toolset = server.toolset("reader", approval=False, warn_unguarded=False, resources=["docs://*"])
            (tool,) = [e for e in await toolset.tools() if e.name == "read_resource"]
            assert "docs://*" in tool.description and "not named here" in tool.description
            for written_by_the_server in ("docs://guide", "The guide", "docs://notes/{id}", "etc/passwd"):
                assert written_by_the_server not in tool.description
            result = await toolset.call("read_resource", {"uri": "docs://guide"})
            assert "read the guide first" in result.text
            await toolset.stop()

    anyio.run(go)
