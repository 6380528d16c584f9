"""Schema profiles: only what a provider refuses is rewritten, every change is named, nothing extra is sent."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from helpers import ROOT, fixture_env, module_cmd

from bridge import ConfigError, Guards, InvalidArguments, connect
from bridge.profiles import Change, apply_profile, restore

pytestmark = pytest.mark.anyio

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "to": {"type": "array", "items": {"type": "string", "format": "email"}},
        "cc": {"type": "string", "default": "ops@example.com"},
        "kind": {"const": "note"},
        "who": {"$ref": "#/$defs/Person"},
    },
    "required": ["to"],
    "$defs": {"Person": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}},
}


def test_openai_strict_requires_every_property_and_closes_objects() -> None:
    out, changes = apply_profile(SCHEMA, "openai-strict")
    assert out["required"] == ["to", "cc", "kind", "who"] and out["additionalProperties"] is False
    assert out["properties"]["cc"] == {"type": ["string", "null"]}
    assert out["properties"]["kind"] == {"anyOf": [{"const": "note"}, {"type": "null"}]}
    assert out["$defs"]["Person"]["additionalProperties"] is False
    assert "$schema" not in out
    assert {c.pointer for c in changes} == {"/$schema", "/properties/cc/default", "/properties/cc",
                                            "/properties/kind", "/properties/who", "/additionalProperties",
                                            "/$defs/Person/additionalProperties"}
    assert SCHEMA["properties"]["cc"] == {"type": "string", "default": "ops@example.com"}  # never mutated


def test_gemini_drops_what_it_refuses_and_inlines_refs() -> None:
    out, changes = apply_profile(SCHEMA, "gemini")
    assert out == {"type": "object", "required": ["to"], "properties": {
        "to": {"type": "array", "items": {"type": "string", "format": "email"}},
        "cc": {"type": "string", "default": "ops@example.com"},
        "kind": {"enum": ["note"]},
        "who": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}}}
    assert Change("/properties/who/$ref", "inlined #/$defs/Person: Gemini does not resolve $ref") in changes
    with pytest.raises(ConfigError, match="unknown schema profile 'claude'"):
        apply_profile(SCHEMA, "claude")


def test_restore_drops_the_nulls_a_strict_profile_asked_for() -> None:
    sent = {"to": ["a@b.example"], "cc": None, "kind": None, "who": {"name": "Jo"}}
    assert restore(sent, SCHEMA, "openai-strict") == {"to": ["a@b.example"], "who": {"name": "Jo"}}
    assert restore(sent, SCHEMA, None) == sent


async def test_a_profiled_toolset_sends_the_server_only_what_it_asked_for() -> None:
    async with connect(module_cmd("fixtures.schema_zoo"), env=fixture_env()) as zoo:
        entry = await zoo.entry("echo_types")
        plain = zoo.toolset("a", approval=False, warn_unguarded=False)
        strict = zoo.toolset("a", Guards(approval=False, warn_unguarded=False, schema_profile="openai-strict"))
        await plain.tools()
        assert plain.model_schema(entry) == entry.input_schema
        assert strict.model_schema(entry) == apply_profile(entry.input_schema, "openai-strict")[0]
        # A strict model sends null for every optional argument it means to leave out: those nulls are
        # dropped, while a null the server's schema itself allows ("nothing") is kept.
        sent = {"count": None, "ratio": None, "flag": None, "name": "x", "nothing": None, "list": None,
                "mapping": None}
        echoed = await strict.call("echo_types", sent)
        assert not echoed.is_error, echoed.text
        assert echoed.structured is not None and set(echoed.structured["arguments"]) == {"name", "nothing"}
        # Without the profile the same nulls are refused locally, as the server's schema says.
        with pytest.raises(InvalidArguments, match="is not of type"):
            await plain.call("echo_types", sent)


def test_show_prints_each_change_with_its_pointer() -> None:
    proc = subprocess.run([sys.executable, "-m", "bridge.cli", "show", "send_email", "--profile", "openai-strict",
                           "--json", "--env", "MULTIMAIL_API_KEY=x", "--", sys.executable, "-m", "fixtures.multimail",
                           "--db", ":memory:"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, **fixture_env()})
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    assert shown["profile"]["name"] == "openai-strict"
    pointers = [c["pointer"] for c in shown["profile"]["changes"]]
    assert "/properties/cc" in pointers and "/additionalProperties" not in pointers  # already closed
    assert shown["autogenSchema"]["parameters"]["required"] == list(shown["tool"]["inputSchema"]["properties"])
