"""Tool search (bridge.search): how words are read, what a query may carry, and the ranking on the
real server-filesystem catalogue, lexical only and with embeddings (bridge.embeddings, the
``search`` extra); and the names a group gives its servers' tools."""

from __future__ import annotations

import base64
import json
import random
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import fixture_env, module_cmd
from thirdparty import servers as thirdparty

from bridge import embeddings, open_servers, search
from bridge.deferred import _first_line
from bridge.search import MAX_TERMS, ToolIndex, query_terms, stem, words

Tool = tuple[str, str, None, str, dict[str, Any]]


def tool(name: str, description: str) -> Tool:
    return (name, name, None, description, {"type": "object"})


# -- reading words ------------------------------------------------------------------------------


@pytest.mark.parametrize(("word", "same_as"), [
    ("saved", "save"), ("created", "create"), ("making", "make"), ("replying", "reply"),
    ("folders", "folder"), ("bounced", "bounce"), ("customers", "customer"), ("writes", "write"),
])
def test_inflections_share_a_stem(word: str, same_as: str) -> None:
    assert stem(word) == stem(same_as)


@pytest.mark.parametrize(("word", "other"), [("customer", "custom"), ("container", "contain")])
def test_an_er_noun_is_not_joined_to_an_unrelated_word(word: str, other: str) -> None:
    assert stem(word) != stem(other)


def test_identifiers_split_into_words_and_ids_are_not_words() -> None:
    assert words("send_email sendEmail get-sum mail.send base64 a3f9c2 getAssetPriceHistory") == [
        "send", "email", "send", "email", "get", "sum", "mail", "send", "base64", "get", "asset", "price", "history"]


@pytest.mark.parametrize("encode", [base64.b64encode, base64.urlsafe_b64encode])
def test_a_pasted_blob_adds_no_terms_before_or_after_the_words(encode: Any) -> None:
    blob = encode(random.Random(7).randbytes(14_000)).decode()  # ~18,700 characters, like a pasted image
    assert len(blob) > 18_000
    assert query_terms(f"{blob} read a file {blob}") == query_terms("read a file") == ["read", "file"]


def test_a_long_query_is_looked_up_by_its_first_words_only() -> None:
    many = " ".join(f"word{n}" for n in range(500))
    assert query_terms(many) == [f"word{n}" for n in range(MAX_TERMS)]


# -- ranking, on both paths: lexical only, and with embeddings when the search extra is installed ------

needs_embeddings = pytest.mark.skipif(not embeddings.available(),
                                      reason="the search extra is not installed: pip install '.[search]'")


@pytest.fixture(params=[False, pytest.param(True, marks=needs_embeddings)], ids=["lexical", "embeddings"])
def semantic(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def test_history_is_not_read_as_the_audit_log(semantic: bool) -> None:
    index = ToolIndex([tool("get_audit_log", "Recent activity on the account: who did what, and when."),
                       tool("browse_history", "Pages visited, most recent first: the browser's history.")],
                      semantic=semantic)
    found = index.search("show my history", 5)
    assert found[0] == "browse_history"
    if not semantic:  # words alone: the audit log shares none with the request
        assert found == ["browse_history"]


def test_a_file_name_in_a_request_does_not_ask_for_a_file_tool(semantic: bool) -> None:
    index = ToolIndex([tool("summarize_text", "Summarize a long passage of text in a few sentences, keeping names "
                                              "and numbers."),
                       tool("read_file", "Read a file.")], semantic=semantic)
    assert index.search("summarize notes.txt for me", 2)[0] == "summarize_text"


def test_a_deprecated_tool_ranks_below_its_replacement(semantic: bool) -> None:
    # Without the demotion the short, exactly named read_file would win.
    index = ToolIndex([tool("read_file", "Read a file. DEPRECATED: use read_text_file instead."),
                       tool("read_text_file", "Read the complete contents of a text file from the file system, in "
                                              "any encoding, with head and tail options.")], semantic=semantic)
    assert index.search("read a file", 2) == ["read_text_file", "read_file"]


def test_general_english_synonyms_bridge_a_request_to_a_tool(semantic: bool) -> None:
    index = ToolIndex([tool("send_email", "Send an email to a recipient."),
                       tool("create_folder", "Create a new folder.")], semantic=semantic)
    assert index.search("compose a message", 2)[0] == "send_email"


def test_a_query_of_only_a_blob_finds_nothing(semantic: bool) -> None:
    blob = base64.b64encode(random.Random(3).randbytes(3_000)).decode()
    assert ToolIndex([tool("read_file", "Read a file.")], semantic=semantic).search(blob, 5) == []


WEATHER = [tool("delete_file", "Remove a file from disk."), tool("send_email", "Send an email to a recipient."),
           tool("get_weather", "Current temperature and forecast for a city."),
           tool("create_invoice", "Bill a customer for an order.")]


@pytest.mark.parametrize("request_", ["will it rain tomorrow in Paris", "charge the client for the purchase"])
def test_lexical_search_needs_a_shared_word(request_: str) -> None:
    index = ToolIndex(WEATHER, semantic=False)
    assert not index.semantic and index.search(request_, 4) == []


@needs_embeddings
@pytest.mark.parametrize(("request_", "expected"), [
    ("will it rain tomorrow in Paris", "get_weather"), ("charge the client for the purchase", "create_invoice")])
def test_embeddings_find_a_tool_that_shares_no_word_with_the_request(request_: str, expected: str) -> None:
    index = ToolIndex(WEATHER)  # by default, with the extra installed
    assert index.semantic and index.search(request_, 4)[0] == expected


WEATHER_TRIP = [tool("get_forecast", "Weather forecast for a city: temperature, rain and wind."),
                tool("storm_warnings", "Severe storm, hurricane and flood alerts issued for a region."),
                tool("city_guide", "Sights, museums and restaurants of a city."),
                tool("book_hotel", "Reserve a hotel room in a city.")]


@needs_embeddings
def test_feedback_from_the_best_match_lifts_a_tool_that_shares_its_vocabulary(monkeypatch: pytest.MonkeyPatch) -> None:
    # The request shares nothing with storm_warnings, and "hot" sits near "hotel" in the model; the
    # best match, get_forecast, speaks of rain and wind, which is what storm_warnings is about.
    index = ToolIndex(WEATHER_TRIP)
    assert index.search("will the weather be hot", 3) == ["get_forecast", "storm_warnings", "book_hotel"]
    monkeypatch.setattr(search, "FEEDBACK_WEIGHT", 0.0)  # the first ranking alone
    assert index.search("will the weather be hot", 3) == ["get_forecast", "book_hotel", "storm_warnings"]


def test_a_request_for_what_no_tool_does_finds_nothing(semantic: bool) -> None:
    assert ToolIndex(WEATHER, semantic=semantic).search("quantum chromodynamics lecture notes", 5) == []


@needs_embeddings
def test_the_embedding_model_loads_from_the_installed_package_without_the_network(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the embedding model tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    embeddings._model.cache_clear()
    try:
        assert ToolIndex(WEATHER, semantic=True).search("will it rain", 1) == ["get_weather"]
    finally:
        embeddings._model.cache_clear()


def test_without_the_search_extra_the_ranking_is_lexical() -> None:
    # A process where wordllama cannot be imported, as where the extra is not installed.
    code = ("import sys; sys.modules['wordllama'] = None\n"
            "from bridge.search import ToolIndex\n"
            "index = ToolIndex([('w', 'get_weather', None, 'Forecast for a city.', {}),"
            " ('m', 'send_email', None, 'Send an email.', {})])\n"
            "print(index.semantic, index.search('email the forecast', 5), index.search('will it rain', 5))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env=fixture_env(), check=True)
    assert done.stdout.split("\n")[0] == "False ['m', 'w'] []"


needs_filesystem = pytest.mark.skipif(not thirdparty.SERVERS["filesystem"].entry.exists()
                                      or not thirdparty.NODE.exists(),
                                      reason=thirdparty.skip_reason() or "server-filesystem is not installed")


@needs_filesystem
@pytest.mark.anyio
async def test_read_a_file_on_server_filesystem_offers_read_text_file_before_the_deprecated_read_file(
        tmp_path: Path) -> None:
    launch = thirdparty.SERVERS["filesystem"].launch(tmp_path)
    config = {"mcpServers": {"filesystem": {"command": launch.argv[0], "args": launch.argv[1:], "env": launch.env,
                                            "cwd": str(launch.cwd)}}}
    async with open_servers(config) as group:
        toolset = group.toolset("reader", catalogue="deferred", approval=False, warn_unguarded=False)
        await toolset.tools()
        answer = json.loads(toolset.find("read a file", 5).text)
    names = [m["name"] for m in answer["matches"]]
    assert "read_text_file" in names[:3] and names.index("read_text_file") < names.index("read_file")
    found = next(m for m in answer["matches"] if m["name"] == "read_text_file")
    # One line of description, cut at a word; the required arguments; the full schema as listed.
    assert found["description"].startswith("Read the complete contents of a file from the file system")
    assert found["description"].endswith("…") and len(found["description"]) <= 160
    assert found["required"] == ["path"] and "head" in found["inputSchema"]["properties"]


def test_a_description_line_is_cut_at_a_word() -> None:
    assert _first_line("Short one.\nSecond line.") == "Short one."
    cut = _first_line("word " * 60)
    assert cut.endswith("word…") and len(cut) <= 160
    assert _first_line("") == ""


# -- names in a group -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_server_names_that_read_the_same_once_made_safe_get_different_prefixes() -> None:
    zoo = {"command": sys.executable, "args": module_cmd("fixtures.schema_zoo")[1:], "env": fixture_env()}
    config = {"mcpServers": {"Asset Price MCP": zoo, "Asset_Price_MCP": zoo}}
    async with open_servers(config) as group:
        routes = await group.toolset("both", approval=False, warn_unguarded=False).routes()
    by_server: dict[str, set[str]] = {}
    for name, route in routes.items():
        by_server.setdefault(route.connection.name, set()).add(name)
    first, second = by_server["Asset_Price_MCP"], by_server["Asset Price MCP"]
    assert len(first) == len(second) > 0 and not first & second
    assert "Asset_Price_MCP_echo_types" in first
    assert all(n.startswith("Asset_Price_MCP_") and len(n) <= 64 for n in second)
