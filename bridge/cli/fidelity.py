"""Did anything get lost between the server's inputSchema and what AutoGen sees?

Two views are compared with the server's ``inputSchema``:

- the **model view**: the tool schema AutoGen sends to the model (``MCPTool.schema``):
  its ``parameters`` must equal the inputSchema, and its name is the MCP name unless the
  name had to be made safe for model APIs;
- the **signature view**: the typed Python signature the bridge generated (what
  frameworks and people reading the code see). Each parameter and each nested type is
  walked alongside the schema node it came from, and every place where the type says
  less than the schema is reported with a JSON pointer into the inputSchema and a reason.

Value constraints (``pattern``, ``format``, ``minimum``, ...) have no Python type; they are
not losses, because arguments are validated against the original schema before any call.
They are listed separately as ``validated_keywords``.
"""

from __future__ import annotations

import inspect
import json
import keyword
import re
import typing
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel
from typing_extensions import is_typeddict

from ..catalogue import ToolEntry
from ..schema import CompiledSchema, resolve_local_ref
from .pytypes import format_annotation, unwrap

if TYPE_CHECKING:
    from ..profiles import Change

__all__ = ["Difference", "Fidelity", "check_fidelity"]

View = Literal["model", "signature"]

_UnionType = type(int | str)
_MAX_DEPTH = 12  # bridge.schema stops typing below this depth
# Keywords that only describe, never constrain: a property with nothing else is "anything".
_ANNOTATION_KEYWORDS = {"description", "title", "default", "examples", "$comment", "deprecated", "readOnly",
                        "writeOnly", "$schema", "$id", "$anchor"}
_VALUE_KEYWORDS = ("format", "pattern", "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum",
                   "exclusiveMaximum", "multipleOf", "minItems", "maxItems", "uniqueItems", "minProperties",
                   "maxProperties", "propertyNames", "dependencies", "dependentRequired", "dependentSchemas",
                   "unevaluatedProperties", "unevaluatedItems", "contains", "not", "if")


@dataclass(frozen=True)
class Difference:
    """One place where a view says less than (or other than) the server's inputSchema.

    ``pointer`` is a JSON pointer into the inputSchema (``""`` is the whole schema;
    ``/name`` means the tool's name).
    """

    view: View
    pointer: str
    kind: str
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"view": self.view, "pointer": self.pointer, "kind": self.kind, "detail": self.detail}


@dataclass(frozen=True)
class Fidelity:
    """The verdict for one tool: lossless, or the exact differences."""

    differences: tuple[Difference, ...] = ()
    validated_keywords: tuple[str, ...] = field(default=())

    @property
    def lossless(self) -> bool:
        return not self.differences

    def of_view(self, view: View) -> list[Difference]:
        return [d for d in self.differences if d.view == view]

    def to_json(self) -> dict[str, Any]:
        return {"lossless": self.lossless, "differences": [d.to_json() for d in self.differences],
                "validatedKeywords": list(self.validated_keywords)}


def _pointer(*parts: str | int) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _json_diff(a: Any, b: Any, path: str = "") -> Iterator[str]:
    """JSON pointers where two JSON values differ (keys missing on either side included)."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in list(a) + [k for k in b if k not in a]:
            sub = path + _pointer(str(key))
            if key not in a or key not in b:
                yield sub
            else:
                yield from _json_diff(a[key], b[key], sub)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            yield from _json_diff(x, y, path + _pointer(i))
    elif json.dumps(a, sort_keys=True, default=str) != json.dumps(b, sort_keys=True, default=str):
        yield path


def _why_renamed_tool(entry: ToolEntry, safe_name: str) -> str:
    name = entry.mcp_name
    reasons = []
    if len(name) > 64:
        reasons.append(f"{len(name)} characters where model APIs allow 64")
    bad = sorted({c for c in name if not re.match(r"[a-zA-Z0-9_-]", c)})
    if bad:
        reasons.append(f"model APIs allow only letters, digits, '_' and '-' (found {' '.join(repr(c) for c in bad)})")
    if len(name) <= 64 and re.search(r"_[0-9a-f]{8}$", safe_name) and not re.search(r"_[0-9a-f]{8}$", name):
        reasons.append("a short hash keeps it apart from another tool that maps to the same name")
    return "; ".join(reasons) or "the bridge was asked to prefix tool names"


def _why_renamed_param(name: str) -> str:
    if keyword.iskeyword(name):
        return f"{name!r} is a Python keyword"
    if keyword.issoftkeyword(name):
        return f"{name!r} is a Python soft keyword"
    if name.startswith("_"):
        return "a leading underscore marks a private field in pydantic, which AutoGen builds its model with"
    if not name.isascii():
        return f"{name!r} is not ASCII"
    if not name.isidentifier():
        return f"{name!r} is not a Python identifier"
    if hasattr(BaseModel, name) or name in ("self", "cancellation_token"):
        return f"{name!r} is taken by pydantic's BaseModel or AutoGen's call signature"
    return "another argument already has that Python name"


def _unconstrained(node: Any) -> bool:
    if node is True or node == {}:
        return True
    return isinstance(node, Mapping) and all(k in _ANNOTATION_KEYWORDS or str(k).startswith("x-") for k in node)


class _Walker:
    """Walks a schema and the Python type derived from it side by side, noting losses."""

    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.found: dict[tuple[str, str], Difference] = {}

    def note(self, pointer: str, kind: str, detail: str) -> None:
        self.found.setdefault((pointer, kind), Difference("signature", pointer, kind, detail))

    def resolve(self, ref: str) -> tuple[Any, str] | None:
        found = resolve_local_ref(self.root, ref)
        return (found[0], _pointer(*found[1])) if found else None

    def why_any(self, node: Any, depth: int) -> str:
        if depth > _MAX_DEPTH:
            return f"nested deeper than {_MAX_DEPTH} levels, where typing stops"
        if node is False:
            return "the schema is `false` (no value is valid)"
        if not isinstance(node, Mapping):
            return "not a JSON Schema object"
        enum = node.get("enum")
        values = [node["const"]] if "const" in node else enum if isinstance(enum, list) else None
        if values is not None:
            bad = [v for v in values if not (isinstance(v, str | int | bool) or v is None)]
            return f"enum values {', '.join(json.dumps(v) for v in bad)} cannot be a typing.Literal " \
                   "(only strings, integers, booleans and null can)"
        if "$ref" in node:
            return f"$ref {node['$ref']!r} does not resolve inside the schema (external references are never fetched)"
        if any(isinstance(node.get(k), list) for k in ("anyOf", "oneOf")):
            return "a branch has no Python type, so the whole union is Any"
        if "allOf" in node:
            return "allOf of schemas that are not all objects has no single Python type"
        kind = node.get("type")
        if isinstance(kind, str) and kind not in ("string", "integer", "number", "boolean", "null", "array",
                                                  "object"):
            return f"unknown type {kind!r}"
        odd = sorted(k for k in node if k in ("not", "if", "then", "else", "contains"))
        if odd:
            return f"{', '.join(odd)} cannot be expressed as a Python type"
        return "no Python type expresses this schema"

    def deref(self, node: Any, pointer: str, refs: tuple[str, ...]) -> tuple[Any, str, tuple[str, ...], bool]:
        """Follow ``$ref``s; the last item says the reference recursed (and typing stopped)."""
        while isinstance(node, Mapping) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if ref in refs:
                return node, pointer, refs, True
            target = self.resolve(ref)
            if target is None:
                return node, pointer, refs, False
            node, pointer = target
            refs = (*refs, ref)
        return node, pointer, refs, False

    def props(self, node: Mapping[str, Any], pointer: str, refs: tuple[str, ...]
              ) -> tuple[dict[str, tuple[Any, str]], set[str]]:
        """Properties (with their pointers) and required names, allOf parts merged in."""
        out: dict[str, tuple[Any, str]] = {}
        required = set(node.get("required") or [])
        for key, sub in (node.get("properties") or {}).items():
            out[str(key)] = (sub, pointer + _pointer("properties", str(key)))
        for i, part in enumerate(node.get("allOf") or []):
            part, part_ptr, _, _ = self.deref(part, pointer + _pointer("allOf", i), refs)
            if isinstance(part, Mapping):
                sub_props, sub_required = self.props(part, part_ptr, refs)
                for key, value in sub_props.items():
                    out.setdefault(key, value)
                required |= sub_required
        return out, required

    def walk(self, node: Any, annotation: Any, pointer: str, refs: tuple[str, ...] = (), depth: int = 0) -> None:
        annotation, _ = unwrap(annotation)
        node, pointer, refs, recursed = self.deref(node, pointer, refs)
        if recursed:
            self.note(pointer, "recursive", f"{node['$ref']} refers back to itself; from here down the type is "
                                            "dict[str, Any] (validation still checks the full shape)")
            return
        if annotation is Any:
            if not _unconstrained(node):
                self.note(pointer, "widened", f"typed as Any: {self.why_any(node, depth)}")
            return
        if not isinstance(node, Mapping) or "const" in node or "enum" in node:
            return
        for key in ("anyOf", "oneOf"):
            if isinstance(node.get(key), list):
                branches = [(b, pointer + _pointer(key, i)) for i, b in enumerate(node[key])]
                self.walk_union(branches, annotation, refs, depth)
                return
        kind = node.get("type")
        if isinstance(kind, list):
            self.walk_union([({**node, "type": k}, pointer) for k in kind], annotation, refs, depth)
            return
        origin = typing.get_origin(annotation)
        args = typing.get_args(annotation)
        if origin is list:
            if "prefixItems" in node:
                self.note(pointer + "/prefixItems", "widened",
                          f"positional item types (a tuple) are typed as {_short(annotation)}")
            elif isinstance(node.get("items"), Mapping) and args:
                self.walk(node["items"], args[0], pointer + "/items", refs, depth + 1)
            return
        if is_typeddict(annotation):
            self.walk_object(node, annotation, pointer, refs, depth)
            return
        if origin is dict:
            props, _ = self.props(node, pointer, refs)
            if props:
                names = ", ".join(sorted(props))
                self.note(pointer, "widened", f"properties {names} are not typed: the object is {_short(annotation)}")
            extra = node.get("additionalProperties")
            if isinstance(extra, Mapping) and len(args) == 2:
                self.walk(extra, args[1], pointer + "/additionalProperties", refs, depth + 1)

    def walk_object(self, node: Mapping[str, Any], typed_dict: Any, pointer: str, refs: tuple[str, ...],
                    depth: int) -> None:
        props, required = self.props(node, pointer, refs)
        hints = typed_dict.__annotations__
        required_keys: frozenset[str] = getattr(typed_dict, "__required_keys__", frozenset())
        for key, (sub, sub_ptr) in props.items():
            if key not in hints:
                self.note(sub_ptr, "missing", f"property {key!r} is not in the TypedDict {typed_dict.__name__} "
                                              "(declared through allOf)")
                continue
            if (key in required) != (key in required_keys):
                self.note(sub_ptr, "required", f"{'required' if key in required else 'optional'} in the schema "
                                               "but not in the TypedDict")
            self.walk(sub, hints[key], sub_ptr, refs, depth + 1)

    def walk_union(self, branches: Sequence[tuple[Any, str]], annotation: Any, refs: tuple[str, ...],
                   depth: int) -> None:
        origin = typing.get_origin(annotation)
        args = list(typing.get_args(annotation)) if origin in (typing.Union, _UnionType) else [annotation]
        for branch, ptr in branches:
            resolved, _, _, _ = self.deref(branch, ptr, refs)
            # Pair each branch with the first unused member of the same shape; equal
            # primitive branches collapse into one member, which is exact.
            match = next((a for a in args if _shape(a) == _schema_shape(resolved)), None)
            if match is None:
                continue
            if _shape(match) in ("object", "array", "map"):
                args.remove(match)
            self.walk(branch, match, ptr, refs, depth + 1)


def _shape(annotation: Any) -> str:
    annotation, _ = unwrap(annotation)
    if is_typeddict(annotation):
        return "object"
    origin = typing.get_origin(annotation)
    if origin is list:
        return "array"
    if origin is dict:
        return "map"
    if origin is typing.Literal:
        return "literal"
    return {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null"}.get(annotation, "?")


def _schema_shape(node: Any) -> str:
    if not isinstance(node, Mapping):
        return "?"
    if "const" in node or "enum" in node:
        return "literal"
    kind = node.get("type")
    if kind == "object" or (kind is None and "properties" in node):
        return "object" if node.get("properties") else "map"
    if kind == "array" or (kind is None and "items" in node):
        return "array"
    return kind if isinstance(kind, str) else "?"


def _short(annotation: Any) -> str:
    return format_annotation(annotation)


def _validated_keywords(node: Any, seen: set[str] | None = None) -> set[str]:
    found: set[str] = set() if seen is None else seen
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key in _VALUE_KEYWORDS:
                found.add(str(key))
            if key not in ("properties", "$defs", "definitions", "patternProperties", "dependentSchemas"):
                _validated_keywords(value, found)
            elif isinstance(value, Mapping):
                for sub in value.values():
                    _validated_keywords(sub, found)
    elif isinstance(node, list):
        for item in node:
            _validated_keywords(item, found)
    return found


def _is_open(compiled: CompiledSchema) -> bool:
    """A schema with no declared properties: ``**arguments`` is its exact signature."""
    root = compiled.schema
    return not root.get("properties") and not any(k in root for k in ("anyOf", "oneOf", "allOf", "$ref"))


def check_fidelity(entry: ToolEntry, model_schema: Mapping[str, Any], signature: inspect.Signature) -> Fidelity:
    """Compare the server's inputSchema with the model-facing schema and the Python signature.

    Args:
        entry: the catalogue entry (the inputSchema as the server sent it).
        model_schema: ``MCPTool.schema``, i.e. what AutoGen puts in the model request.
        signature: ``MCPTool.signature``, the function signature AutoGen introspects.
    """
    schema = entry.input_schema
    found: list[Difference] = []
    for pointer in _json_diff(schema, model_schema.get("parameters", {})):
        found.append(Difference("model", pointer, "changed", "the model is sent a different value here"))
    if model_schema.get("name") != entry.mcp_name:
        shown = str(model_schema.get("name"))
        found.append(Difference("model", "/name", "renamed",
                                f"the model calls it {shown!r}: {_why_renamed_tool(entry, shown)}; "
                                f"calls still go out as {entry.mcp_name!r}"))
    compiled = entry.compiled
    params = list(signature.parameters.values())
    untyped = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    if untyped:
        if not compiled.typed and not _is_open(compiled):
            found.append(Difference("signature", "", "untyped", f"signature is (**arguments: Any): {compiled.reason}"))
        elif compiled.typed:
            found.append(Difference("signature", "", "untyped", "AutoGen (pydantic) could not model the derived "
                                                                 "types, so the tool is registered untyped"))
    else:
        walker = _Walker(schema)
        root, root_ptr, refs, _ = walker.deref(schema, "", ())
        by_py = {p.name: p for p in params}
        props, required = walker.props(root, root_ptr, refs) if isinstance(root, Mapping) else ({}, set())
        declared = {p.name: p for p in compiled.parameters}
        for key, (sub, ptr) in props.items():
            param = declared.get(key)
            sig_param = by_py.get(param.py_name) if param else None
            if param is None or sig_param is None:
                walker.note(ptr, "missing", f"{key!r} is not a parameter: the signature lists only top-level "
                                            "'properties' (the model still sees it, and validation enforces it)")
                continue
            if param.py_name != key:
                walker.note(ptr, "renamed", f"Python name {param.py_name!r}: {_why_renamed_param(key)}; the model "
                                            f"and the wire keep {key!r}")
            is_required = sig_param.default is inspect.Parameter.empty
            if is_required != (key in required):
                walker.note(ptr, "required", f"{'required' if key in required else 'optional'} in the schema but "
                                             f"{'required' if is_required else 'optional'} in the signature")
            walker.walk(sub, sig_param.annotation, ptr, refs)
        found.extend(walker.found.values())
    return Fidelity(tuple(found), tuple(sorted(_validated_keywords(schema))))


def with_profile(fidelity: Fidelity, profile: str, changes: Sequence[Change]) -> Fidelity:
    """``fidelity`` plus what a provider schema profile changes in what the model is sent, each
    change a difference of the model's view (the verdict then counts them instead of saying lossless)."""
    made = tuple(Difference("model", c.pointer, f"profile {profile}", c.why) for c in changes)
    return Fidelity(fidelity.differences + made, fidelity.validated_keywords)
