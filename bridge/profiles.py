"""Schema profiles: rewrite only what a model provider refuses, and say where and why.

The bridge sends the server's inputSchema unchanged by default, which is right for OpenAI's
default mode. Some providers behind OpenAI-compatible endpoints refuse parts of JSON Schema, and
OpenAI's strict mode has rules of its own. A profile is opt-in (``Guards(schema_profile=...)``);
it returns the rewritten schema plus one ``Change`` per edit (a JSON pointer into the server's
schema and the reason), which ``mcp-bridge show --profile`` prints. Validation before a call is
always against the server's own schema, and ``restore`` undoes what a profile made the model send
(``null`` for an argument the server has as optional), so nothing reaches the server that it did
not ask for.

* ``openai-strict``: every object lists all its properties in ``required`` and closes with
  ``additionalProperties: false``; a property the server has as optional becomes nullable
  instead (the model sends ``null`` for "not given"); keywords strict mode rejects are removed.
* ``gemini``: ``$schema``, ``additionalProperties`` and other keywords Gemini's endpoint refuses
  are removed; ``const`` becomes a one-value ``enum``; local ``$ref``s are inlined (not recursive
  ones, which are left and noted).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from .errors import ConfigError

__all__ = ["PROFILES", "Change", "Profile", "apply_profile", "restore"]

Profile = Literal["openai-strict", "gemini"]
PROFILES: tuple[str, ...] = get_args(Profile)

_STRICT_DROP = {
    "$schema": "strict mode refuses meta keywords",
    "$id": "strict mode refuses meta keywords",
    "default": "strict mode does not support defaults",
    "examples": "strict mode does not support examples",
    "minLength": "strict mode does not support string length bounds",
    "maxLength": "strict mode does not support string length bounds",
    "minProperties": "strict mode does not support object size bounds",
    "maxProperties": "strict mode does not support object size bounds",
    "patternProperties": "strict mode does not support patternProperties",
    "unevaluatedProperties": "strict mode does not support unevaluatedProperties",
    "dependentRequired": "strict mode does not support dependentRequired",
    "if": "strict mode does not support conditionals",
    "then": "strict mode does not support conditionals",
    "else": "strict mode does not support conditionals",
}
_GEMINI_DROP = {
    "$schema": "Gemini refuses $schema",
    "$id": "Gemini refuses $id",
    "$comment": "Gemini refuses $comment",
    "additionalProperties": "Gemini refuses additionalProperties",
    "examples": "Gemini refuses examples",
    "patternProperties": "Gemini refuses patternProperties",
    "unevaluatedProperties": "Gemini refuses unevaluatedProperties",
    "dependentRequired": "Gemini refuses dependentRequired",
    "if": "Gemini refuses conditionals",
    "then": "Gemini refuses conditionals",
    "else": "Gemini refuses conditionals",
}
# Keywords whose values are sub-schemas (a mapping of them, or a list of them).
_SCHEMA_MAPS = ("properties", "$defs", "definitions")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SCHEMA_ONE = ("items", "not", "additionalProperties", "contains")


@dataclass(frozen=True)
class Change:
    """One edit a profile made: where in the server's schema (a JSON pointer) and why."""

    pointer: str
    why: str


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _nullable(schema: Any) -> Any:
    if not isinstance(schema, Mapping):
        return schema
    kind = schema.get("type")
    if isinstance(kind, str):
        return {**schema, "type": [kind, "null"]} if kind != "null" else dict(schema)
    if isinstance(kind, list):
        return {**schema, "type": kind if "null" in kind else [*kind, "null"]}
    if "enum" in schema and None not in schema["enum"]:
        return {**schema, "enum": [*schema["enum"], None]}
    return {"anyOf": [dict(schema), {"type": "null"}]}


def _accepts_null(schema: Any) -> bool:
    if not isinstance(schema, Mapping):
        return True
    kind = schema.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    if kind is None and not any(k in schema for k in ("enum", "const", "anyOf", "oneOf", "allOf", "$ref")):
        return True
    return any(_accepts_null(s) for s in schema.get("anyOf", []) + schema.get("oneOf", []))


class _Rewriter:
    def __init__(self, profile: Profile, root: Mapping[str, Any]) -> None:
        self.profile = profile
        self.root = root
        self.changes: list[Change] = []

    def note(self, pointer: str, why: str) -> None:
        self.changes.append(Change(pointer, why))

    def resolve(self, ref: str) -> Any:
        node: Any = self.root
        for part in ref.removeprefix("#/").split("/"):
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, Mapping) or part not in node:
                return None
            node = node[part]
        return node

    def walk(self, node: Any, pointer: str, refs: tuple[str, ...] = ()) -> Any:
        if not isinstance(node, Mapping):
            return node
        out: dict[str, Any] = {}
        if self.profile == "gemini" and isinstance(node.get("$ref"), str) and node["$ref"].startswith("#"):
            ref = node["$ref"]
            target = self.resolve(ref)
            if target is not None and ref not in refs:
                self.note(pointer + "/$ref", f"inlined {ref}: Gemini does not resolve $ref")
                merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
                return self.walk(merged, pointer, (*refs, ref))
            if ref in refs:
                self.note(pointer + "/$ref", f"left as is: {ref} is recursive and cannot be inlined")
        drop = _STRICT_DROP if self.profile == "openai-strict" else _GEMINI_DROP
        for key, value in node.items():
            here = f"{pointer}/{_escape(key)}"
            if key in drop:
                self.note(here, f"removed: {drop[key]}")
                continue
            if key in ("$defs", "definitions") and self.profile == "gemini" and pointer == "":
                continue  # inlined where used; decided after the walk
            if key == "const" and self.profile == "gemini":
                self.note(here, "became enum: [value]: Gemini refuses const")
                out["enum"] = [value]
                continue
            if key in _SCHEMA_MAPS and isinstance(value, Mapping):
                out[key] = {k: self.walk(v, f"{here}/{_escape(k)}", refs) for k, v in value.items()}
            elif key in _SCHEMA_LISTS and isinstance(value, list):
                out[key] = [self.walk(v, f"{here}/{i}", refs) for i, v in enumerate(value)]
            elif key in _SCHEMA_ONE and isinstance(value, Mapping):
                out[key] = self.walk(value, here, refs)
            else:
                out[key] = copy.deepcopy(value)
        if self.profile == "openai-strict":
            self._strict_object(out, pointer)
        return out

    def _strict_object(self, out: dict[str, Any], pointer: str) -> None:
        properties = out.get("properties")
        if not isinstance(properties, Mapping) and out.get("type") != "object":
            return
        properties = dict(properties or {})
        required = list(out.get("required", []))
        for name, prop in properties.items():
            if name not in required:
                self.note(f"{pointer}/properties/{_escape(name)}",
                          "made required and nullable: strict mode wants every property required "
                          "(the model sends null for 'not given', which the bridge drops before the call)")
                properties[name] = _nullable(prop)
                required.append(name)
        out["properties"], out["required"] = properties, required
        extra = out.get("additionalProperties")
        if extra is not False:
            why = ("set to false: strict mode wants closed objects" if extra is None else
                   "set to false: strict mode wants closed objects (extra keys the server allows cannot be sent)")
            self.note(f"{pointer}/additionalProperties", why)
            out["additionalProperties"] = False


def apply_profile(schema: Mapping[str, Any], profile: str) -> tuple[dict[str, Any], list[Change]]:
    """The schema ``profile`` sends the model, and every change made to the server's ``schema``.

    Raises:
        ConfigError: an unknown profile.
    """
    if profile not in PROFILES:
        raise ConfigError(f"unknown schema profile {profile!r}; known: {', '.join(PROFILES)}")
    rewriter = _Rewriter(profile, schema)  # type: ignore[arg-type]
    out = rewriter.walk(schema, "")
    if profile == "gemini" and isinstance(out, dict):
        kept = [c for c in rewriter.changes if c.why.startswith("left as is")]
        for key in ("$defs", "definitions"):
            if key in schema:
                if kept:
                    out[key] = {k: rewriter.walk(v, f"/{key}/{_escape(k)}") for k, v in schema[key].items()}
                else:
                    rewriter.note(f"/{key}", "removed: every $ref into it was inlined")
    return out, rewriter.changes


def restore(arguments: Mapping[str, Any], schema: Mapping[str, Any], profile: str | None) -> dict[str, Any]:
    """The model's arguments as the server's schema wants them: a ``null`` that a profile asked for
    in place of an omitted optional argument is dropped again (nested objects too)."""
    if profile != "openai-strict":
        return dict(arguments)
    restored: dict[str, Any] = _restore(arguments, schema, _Rewriter("openai-strict", schema))
    return restored


def _restore(value: Any, schema: Any, root: _Rewriter, depth: int = 0) -> Any:
    while isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str) and depth < 32:
        schema, depth = root.resolve(schema["$ref"]), depth + 1
    if not isinstance(value, Mapping) or not isinstance(schema, Mapping):
        return value
    properties = schema.get("properties")
    if not isinstance(properties, Mapping):
        return dict(value)
    required = set(schema.get("required", []))
    out: dict[str, Any] = {}
    for key, item in value.items():
        prop = properties.get(key)
        target = prop
        while isinstance(target, Mapping) and isinstance(target.get("$ref"), str) and depth < 32:
            target, depth = root.resolve(target["$ref"]), depth + 1
        if item is None and key not in required and prop is not None and not _accepts_null(target):
            continue
        out[key] = _restore(item, prop, root, depth + 1) if prop is not None else item
    return out
