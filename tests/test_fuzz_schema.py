"""Property-based tests of the schema layer: generated JSON Schemas and argument sets.

For every generated inputSchema: compiling never raises; the schema AutoGen hands the model
is the input schema, unchanged; the generated signature is valid Python and AutoGen accepts
it; wire names survive the trip through Python names; and the bridge's argument validation
agrees with jsonschema on every generated argument set (valid and invalid alike). The
generators cover the 2020-12 keywords the README lists as validated (``prefixItems``,
``dependentRequired``, ``unevaluatedProperties``) and ``patternProperties`` and ``if``/
``then``/``else`` besides.

For the real corpus (the zoo's and MultiMail's schemas) every property's arguments come from
hypothesis-jsonschema; one it cannot draw is a failure naming the schema and the property.

``make test`` runs a few hundred schemas per property (well under a minute in all);
``make fuzz`` (``HYPOTHESIS_PROFILE=long``) runs thousands, or ``FUZZ_EXAMPLES=N``.
"""

from __future__ import annotations

import inspect
import keyword
import os
from collections.abc import Mapping
from functools import cache
from typing import Any

import jsonschema
import mcp_types as types
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from bridge import InvalidArguments
from bridge.autogen import MCPTool
from bridge.catalogue import ToolEntry
from bridge.registry import ServerSpec
from bridge.schema import OMIT, compile_schema, endless_recursion, format_checker_for
from bridge.toolset import Toolset
from fixtures.multimail.catalogue import TOOLS as MULTIMAIL_TOOLS
from fixtures.schema_zoo import ZOO_SCHEMAS

LONG = os.environ.get("HYPOTHESIS_PROFILE") == "long"
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "4000" if LONG else "150"))
if LONG:
    # A long run is sized by its example count, not by the suite's per-test time limit.
    pytestmark = pytest.mark.timeout(0)
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not LONG,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])

# Names that break naive converters: keywords, pydantic/AutoGen internals, digits, dashes,
# non-ASCII, empty, dunder; plus arbitrary text.
_AWKWARD = ["from", "class", "schema", "self", "cancellation_token", "model_config", "model_fields", "2fa",
            "data-type", "café", "_private", "arguments", "kwargs", "json", "copy", "validate", "return", "None",
            "async", "match", "type", "id", "a b", "", "__init__", "dict", "ünï", "arg", "arg_2fa", "from_"]
names = st.one_of(st.sampled_from(_AWKWARD), st.text(min_size=1, max_size=10))
scalars = st.one_of(st.none(), st.booleans(), st.integers(-1000, 1000),
                    st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False), st.text(max_size=8))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)
_FORMATS = ["email", "date-time", "date", "time", "uri", "uuid", "ipv4", "hostname", "regex", "made-up-format"]
_PATTERNS = ["^[a-z]+$", "\\d", "^x", "[A-Z]{2,}"]
# patternProperties keys: each matches some of _AWKWARD and of the extra keys `typical` invents.
_KEY_PATTERNS = ["^x_", "^[0-9]+$", "_", "^[a-z]{1,3}$"]


def _annotate(draw: st.DrawFn, schema: dict[str, Any]) -> dict[str, Any]:
    if draw(st.booleans()):
        schema["description"] = draw(st.text(max_size=20))
    if draw(st.integers(0, 5)) == 0:
        schema["title"] = draw(st.text(max_size=10))
    return schema


@st.composite
def leaf(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["string", "integer", "number", "boolean", "null", "enum", "const", "any",
                                 "multi", "true", "false"]))
    if kind == "true":
        return True
    if kind == "false":
        return False
    schema: dict[str, Any]
    if kind == "string":
        schema = {"type": "string"}
        if draw(st.booleans()):
            schema["format"] = draw(st.sampled_from(_FORMATS))
        if draw(st.booleans()):
            schema["minLength"] = draw(st.integers(0, 3))
        if draw(st.integers(0, 3)) == 0:
            schema["pattern"] = draw(st.sampled_from(_PATTERNS))
    elif kind in ("integer", "number"):
        schema = {"type": kind}
        if draw(st.booleans()):
            schema["minimum"] = draw(st.integers(-10, 10))
        if draw(st.booleans()):
            schema["exclusiveMaximum"] = draw(st.integers(11, 100))
    elif kind in ("boolean", "null"):
        schema = {"type": kind}
    elif kind == "enum":
        schema = {"enum": draw(st.lists(scalars, min_size=1, max_size=4, unique_by=repr))}
    elif kind == "const":
        schema = {"const": draw(json_values)}
    elif kind == "multi":
        schema = {"type": draw(st.lists(st.sampled_from(["string", "integer", "null", "boolean", "array"]),
                                        min_size=1, max_size=3, unique=True))}
    else:
        schema = {}
    if draw(st.integers(0, 4)) == 0:
        schema["default"] = draw(json_values)
    return _annotate(draw, schema)


def _extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    @st.composite
    def compound(draw: st.DrawFn) -> Any:
        kind = draw(st.sampled_from(["array", "tuple", "object", "map", "patterned", "anyOf", "oneOf", "allOf",
                                     "conditional", "ref", "nullable"]))
        if kind == "array":
            schema: dict[str, Any] = {"type": "array", "items": draw(children)}
            if draw(st.booleans()):
                schema["maxItems"] = draw(st.integers(0, 4))
            if draw(st.integers(0, 3)) == 0:
                schema["uniqueItems"] = True
        elif kind == "tuple":
            schema = {"type": "array", "prefixItems": draw(st.lists(children, min_size=1, max_size=3))}
            rest = draw(st.sampled_from(["absent", "false", "schema"]))
            if rest != "absent":
                schema["items"] = False if rest == "false" else draw(children)
            if draw(st.booleans()):
                schema["minItems"] = draw(st.integers(0, 3))
        elif kind == "object":
            schema = draw(obj(children))
        elif kind == "map":
            schema = {"type": "object", "additionalProperties": draw(children)}
        elif kind == "patterned":
            schema = {"type": "object", "patternProperties": _pattern_properties(draw, children)}
            if draw(st.booleans()):
                schema["additionalProperties"] = False
        elif kind in ("anyOf", "oneOf"):
            schema = {kind: draw(st.lists(children, min_size=1, max_size=3))}
        elif kind == "allOf":
            schema = {"allOf": draw(st.lists(obj(children), min_size=1, max_size=2))}
        elif kind == "conditional":
            schema = {"if": draw(children)}
            for branch in draw(st.lists(st.sampled_from(["then", "else"]), min_size=1, max_size=2, unique=True)):
                schema[branch] = draw(children)
        elif kind == "ref":
            schema = {"$ref": "#/$defs/" + draw(st.sampled_from(["Shared", "Tree", "Missing~1name"]))}
        else:
            schema = {"anyOf": [draw(children), {"type": "null"}]}
        return _annotate(draw, schema)

    return compound()


def _pattern_properties(draw: st.DrawFn, children: st.SearchStrategy[Any]) -> dict[str, Any]:
    patterns = draw(st.lists(st.sampled_from(_KEY_PATTERNS), min_size=1, max_size=2, unique=True))
    return {p: draw(children) for p in patterns}


@st.composite
def obj(draw: st.DrawFn, children: st.SearchStrategy[Any]) -> dict[str, Any]:
    props = draw(st.dictionaries(names, children, max_size=5))
    schema: dict[str, Any] = {"type": "object", "properties": props}
    keys = sorted(props)
    if props:
        schema["required"] = draw(st.lists(st.sampled_from(keys), unique=True, max_size=len(props)))
    extra = draw(st.sampled_from(["absent", "false", "true", "schema"]))
    if extra != "absent":
        schema["additionalProperties"] = {"false": False, "true": True}.get(extra) if extra != "schema" \
            else draw(children)
    if draw(st.integers(0, 3)) == 0:
        schema["patternProperties"] = _pattern_properties(draw, children)
    if props and draw(st.integers(0, 2)) == 0:
        # Dependencies on declared keys and on keys nobody declared: both are legal.
        targets = st.lists(st.sampled_from([*keys, "x_extra"]), unique=True, max_size=3)
        schema["dependentRequired"] = draw(st.dictionaries(st.sampled_from(keys), targets, max_size=2))
    if draw(st.integers(0, 3)) == 0:
        schema["unevaluatedProperties"] = draw(st.sampled_from([False, True]) | children)
    if props and draw(st.integers(0, 3)) == 0:
        # A discriminator: when `key` holds a given value, another key becomes required or forbidden.
        key = draw(st.sampled_from(keys))
        schema["if"] = {"properties": {key: {"const": draw(scalars)}}, "required": [key]}
        schema["then"] = {"required": draw(st.lists(st.sampled_from(keys), min_size=1, max_size=2, unique=True))}
        if draw(st.booleans()):
            schema["else"] = {"properties": {draw(st.sampled_from(keys)): False}}
    return schema


schemas_inside = st.recursive(leaf(), _extend, max_leaves=10)


@st.composite
def input_schemas(draw: st.DrawFn) -> dict[str, Any]:
    """A tool inputSchema: a top-level object (MCP requires it), with local $defs and drafts mixed."""
    schema = draw(obj(schemas_inside))
    draft = draw(st.sampled_from(["2020-12", "none", "draft-07"]))
    schema["definitions" if draft == "draft-07" else "$defs"] = {
        "Shared": draw(schemas_inside),
        # Recursive: a tree of nodes referring to itself.
        "Tree": {"type": "object", "properties": {"label": {"type": "string"},
                                                  "children": {"type": "array", "items": {"$ref": "#/$defs/Tree"}}}},
        "Missing/name": {"type": "integer"},
    }
    if draft == "draft-07":
        schema = _draft07_refs(schema)
        schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    elif draft == "2020-12":
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    return _annotate(draw, schema)


def _draft07_refs(node: Any) -> Any:
    """The same schema with ``#/$defs/`` references pointing at draft-07's ``#/definitions/``."""
    if isinstance(node, dict):
        return {k: (v.replace("#/$defs/", "#/definitions/") if k == "$ref" and isinstance(v, str)
                    else _draft07_refs(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [_draft07_refs(v) for v in node]
    return node


def _resolve(root: Mapping[str, Any], ref: str) -> Any:
    node: Any = root
    for part in ref.lstrip("#/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, Mapping) or part not in node:
            return {}
        node = node[part]
    return node


def typical(draw: st.DrawFn, root: Mapping[str, Any], node: Any, depth: int = 0) -> Any:
    """A value shaped like ``node`` most of the time, arbitrary JSON otherwise: both verdicts get exercised."""
    if depth > 4 or not isinstance(node, Mapping) or draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    if "$ref" in node:
        return typical(draw, root, _resolve(root, node["$ref"]), depth + 1)
    if "const" in node:
        return node["const"]
    if "enum" in node:
        return draw(st.sampled_from(node["enum"]))
    for key in ("anyOf", "oneOf", "allOf"):
        if node.get(key):
            return typical(draw, root, draw(st.sampled_from(node[key])), depth + 1)
    kind = node.get("type")
    if isinstance(kind, list):
        kind = draw(st.sampled_from(kind)) if kind else None
    if kind is None and "if" in node:
        branches = [node[k] for k in ("if", "then", "else") if k in node]
        return typical(draw, root, draw(st.sampled_from(branches)), depth + 1)
    if kind == "object" or "properties" in node or "patternProperties" in node:
        return _typical_object(draw, root, node, depth)
    if kind == "array" or "prefixItems" in node:
        return _typical_array(draw, root, node, depth)
    strategies = {"string": st.text(max_size=8) | st.sampled_from(["a@b.co", "2024-01-02", "not a date", "ab"]),
                  "integer": st.integers(-20, 120), "number": st.floats(-20, 120, allow_nan=False),
                  "boolean": st.booleans(), "null": st.none()}
    return draw(strategies.get(str(kind), json_values))


def _typical_object(draw: st.DrawFn, root: Mapping[str, Any], node: Mapping[str, Any], depth: int) -> Any:
    out = {}
    required = node.get("required") or []
    for key, sub in (node.get("properties") or {}).items():
        if key in required or draw(st.booleans()):
            out[key] = typical(draw, root, sub, depth + 1)
    # Keys beyond the declared ones: matching a pattern, filling a map, or simply unexpected.
    patterns = node.get("patternProperties") or {}
    extra = node.get("additionalProperties")
    for _ in range(draw(st.integers(0, 2 if patterns or isinstance(extra, Mapping) else 1))):
        if patterns and draw(st.booleans()):
            pattern = draw(st.sampled_from(sorted(patterns)))
            out[draw(st.from_regex(pattern))] = typical(draw, root, patterns[pattern], depth + 1)
        else:
            value_schema = extra if isinstance(extra, Mapping) else None
            out[draw(st.sampled_from(["x_extra", "42", "zz"]) | st.text(max_size=4))] = \
                typical(draw, root, value_schema, depth + 1) if value_schema is not None else draw(json_values)
    return out


def _typical_array(draw: st.DrawFn, root: Mapping[str, Any], node: Mapping[str, Any], depth: int) -> Any:
    items = node.get("items")
    # 2020-12 spells a tuple prefixItems; draft-07 spelt it as a list under items.
    prefix = node.get("prefixItems") if "prefixItems" in node else (items if isinstance(items, list) else [])
    rest = None if isinstance(items, list) else items
    count = draw(st.integers(0, len(prefix) + 2 if prefix else 3))
    return [typical(draw, root, prefix[i] if i < len(prefix) else rest, depth + 1) for i in range(count)]


def _reference_validator(schema: Mapping[str, Any]) -> jsonschema.protocols.Validator:
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    # The bridge's documented checker: jsonschema's, with a stricter email rule (README).
    return cls(schema, format_checker=format_checker_for(cls))


def _check_signature(compiled: Any, schema: Mapping[str, Any]) -> None:
    params = list(compiled.signature.parameters.values())
    assert len({p.name for p in params}) == len(params)
    for p in params:
        assert p.name.isidentifier() and not keyword.iskeyword(p.name), p.name
        assert p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.VAR_KEYWORD)
        assert p.default in (inspect.Parameter.empty, OMIT)
    if compiled.typed:
        assert [p.name for p in compiled.parameters] == [str(k) for k in schema.get("properties") or {}]
        required = set(schema.get("required") or [])
        for param in compiled.parameters:
            shown = compiled.signature.parameters[param.py_name]
            assert (shown.default is inspect.Parameter.empty) == (param.name in required)


def _agree(compiled: Any, reference: jsonschema.protocols.Validator, arguments: dict[str, Any]) -> bool:
    """Asserts the bridge and jsonschema give ``arguments`` the same verdict; returns it."""
    try:
        # Every error, as the bridge walks them (is_valid stops at the first and can miss a cycle).
        expected = not list(reference.iter_errors(arguments))
    except BaseException as e:
        if not endless_recursion(e):
            raise
        # A $ref cycle that consumes no input ({"$ref": "#/$defs/A"} inside A): jsonschema has no
        # verdict; the bridge's is test_a_ref_cycle_is_reported_as_invalid_arguments.
        assume(False)
    try:
        compiled.validate(arguments)
    except InvalidArguments as e:
        assert not expected, f"bridge rejected valid arguments {arguments!r}: {e}"
        assert e.rule  # always names the rule it broke
    else:
        assert expected, f"bridge accepted invalid arguments {arguments!r}: {list(reference.iter_errors(arguments))}"
    fast = compiled._fast
    if fast is not None:  # where the bridge asks jsonschema-rs first, it gives jsonschema's very verdict
        assert fast(arguments) == expected, f"jsonschema-rs says {not expected} for {arguments!r}"
    return expected


# -- properties -------------------------------------------------------------------------------------


@FUZZ
@given(schema=input_schemas(), data=st.data())
def test_conversion_never_raises_and_keeps_the_schema(schema: dict[str, Any], data: st.DataObject) -> None:
    snapshot = repr(schema)
    compiled = compile_schema(schema, name=data.draw(names))
    _check_signature(compiled, schema)

    tool = types.Tool(name="fuzzed", description="d", input_schema=schema)
    entry = ToolEntry.from_mcp(tool, "fuzzed")
    mcp_tool = MCPTool(Toolset(ServerSpec(name="fuzz", target={"command": "true"})), entry)
    assert mcp_tool.schema["parameters"] == schema  # what the model sees is what the server sent
    assert mcp_tool.schema["parameters"] is not schema
    inspect.signature(mcp_tool._func)  # AutoGen accepted a callable with a real signature
    assert repr(schema) == snapshot  # nothing mutated the server's schema

    # Wire names survive the trip through Python names.
    if compiled.typed and compiled.parameters:
        wire = {p.name: data.draw(json_values) for p in compiled.parameters if data.draw(st.booleans())}
        by_wire = {p.name: p.py_name for p in compiled.parameters}
        assert compiled.to_wire({by_wire[k]: v for k, v in wire.items()}) == wire


@FUZZ
@given(schema=input_schemas(), data=st.data())
def test_validation_agrees_with_jsonschema(schema: dict[str, Any], data: st.DataObject) -> None:
    compiled = compile_schema(schema)
    reference = _reference_validator(schema)
    for _ in range(4):
        arguments = typical(data.draw, schema, schema)
        _agree(compiled, reference, arguments if isinstance(arguments, dict) else {"value": arguments})


# -- the real corpus, with hypothesis-jsonschema drawing every property ----------------------------

_CORPUS: dict[str, Mapping[str, Any]] = {f"zoo.{n}": s for n, s in ZOO_SCHEMAS.items()}
_CORPUS.update({f"multimail.{t.name}": t.input_schema for t in MULTIMAIL_TOOLS})
# A recursive $ref is unrolled this many times, then closed with `false` (hypothesis-jsonschema
# cannot draw recursive references; every tree it draws from the unrolled schema is a valid tree).
_UNROLL = 3
# Formats the bridge checks that hypothesis-jsonschema does not know (it would ignore them).
_FORMAT_STRATEGIES: dict[str, st.SearchStrategy[str]] = {"uuid": st.uuids().map(str)}
# Where a schema holds sub-schemas: alone, in a list, or by name. Everything else is a value.
_ONE_SCHEMA = frozenset({"items", "additionalItems", "additionalProperties", "unevaluatedItems",
                         "unevaluatedProperties", "contains", "propertyNames", "not", "if", "then", "else"})
_SCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "dependentSchemas", "dependencies"})


def _inline_refs(root: Mapping[str, Any], node: Any, stack: tuple[str, ...] = ()) -> Any:
    """``node`` with every local ``$ref`` replaced by what it points at (recursion unrolled)."""
    if not isinstance(node, Mapping):
        return node  # true / false
    ref = node.get("$ref")
    if isinstance(ref, str):
        assert ref.startswith("#/"), f"an external $ref in the corpus: {ref}"
        if stack.count(ref) >= _UNROLL:
            return False
        target = _inline_refs(root, _resolve_strict(root, ref), (*stack, ref))
        rest = _inline_refs(root, {k: v for k, v in node.items() if k != "$ref"}, stack)
        return {"allOf": [target], **rest} if rest else target

    def sub(value: Any) -> Any:
        return _inline_refs(root, value, stack)

    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("$defs", "definitions"):
            continue  # every reference into them is inlined
        if key in _ONE_SCHEMA:
            out[key] = [sub(v) for v in value] if isinstance(value, list) else sub(value)  # draft-07 tuples
        elif key in _SCHEMA_LISTS:
            out[key] = [sub(v) for v in value]
        elif key in _SCHEMA_MAPS:
            # draft-07 `dependencies` mixes schemas and lists of names.
            out[key] = {name: v if isinstance(v, list) else sub(v) for name, v in value.items()}
        else:
            out[key] = value
    return out


def _resolve_strict(root: Mapping[str, Any], ref: str) -> Any:
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


@cache
def _strategies(name: str) -> dict[str, st.SearchStrategy[Any]]:
    schema = _CORPUS[name]
    return {key: from_schema(_inline_refs(schema, sub), custom_formats=_FORMAT_STRATEGIES)
            for key, sub in (schema.get("properties") or {}).items()}


def test_the_corpus_reaches_every_hard_case() -> None:
    # Objects, maps, arrays of objects and recursion: the shapes a generator most easily routes around.
    def kinds(node: Any) -> set[str]:
        if isinstance(node, list):
            return set().union(*map(kinds, node)) if node else set()
        if not isinstance(node, Mapping):
            return set()
        found = {k for k in ("prefixItems", "dependentRequired", "unevaluatedProperties", "patternProperties", "if",
                             "additionalProperties", "properties") if k in node}
        if isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
            found.add("$ref")
        return found.union(*(kinds(v) for k, v in node.items() if k not in ("const", "enum", "default")))

    seen: set[str] = set()
    for schema in _CORPUS.values():
        for sub in (schema.get("properties") or {}).values():
            seen |= kinds(sub)
        seen |= {k for k in ("dependentRequired", "unevaluatedProperties", "if") if k in schema}
    assert seen >= {"prefixItems", "dependentRequired", "unevaluatedProperties", "patternProperties", "if",
                    "additionalProperties", "properties", "$ref"}


def _draws_valid_values(strategy: st.SearchStrategy[Any], validator: jsonschema.protocols.Validator) -> None:
    # Generation only: a few draws prove the strategy works; shrinking would only cost time.
    @settings(max_examples=5, phases=[Phase.generate], database=None, deadline=None,
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def check(value: Any) -> None:
        # What it draws must satisfy the property's own schema, or the verdicts below prove little.
        assert validator.is_valid(value), f"drew an invalid value {value!r}"

    check()


@pytest.mark.parametrize("name", sorted(_CORPUS))
def test_every_corpus_property_has_an_argument_strategy(name: str) -> None:
    schema = _CORPUS[name]
    dialect = {"$schema": schema["$schema"]} if "$schema" in schema else {}
    defs = {k: schema[k] for k in ("$defs", "definitions") if k in schema}
    for key, strategy in _strategies(name).items():
        try:
            _draws_valid_values(strategy, _reference_validator({**schema["properties"][key], **defs, **dialect}))
        except Exception as e:
            pytest.fail(f"{name}: no argument strategy for property {key!r}: {type(e).__name__}: {e}")


@settings(max_examples=EXAMPLES * 2, deadline=None, derandomize=not LONG,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])
@given(name=st.sampled_from(sorted(_CORPUS)), data=st.data())
def test_real_schemas_agree_with_jsonschema_on_generated_arguments(name: str, data: st.DataObject) -> None:
    """The zoo's and MultiMail's schemas: every property drawn by hypothesis-jsonschema, one sometimes bent."""
    schema = _CORPUS[name]
    props = schema.get("properties") or {}
    required = set(schema.get("required") or [])
    arguments: dict[str, Any] = {}
    for key, strategy in _strategies(name).items():
        if key in required or data.draw(st.booleans()):
            arguments[key] = data.draw(strategy, label=f"{name}.{key}")
    # Valid-by-construction values leave half the verdicts untested; `typical` bends one argument.
    if props and data.draw(st.integers(0, 3)) == 0:
        key = data.draw(st.sampled_from(sorted(props)))
        arguments[key] = typical(data.draw, schema, props[key])
    _agree(compile_schema(schema, name=name), _reference_validator(schema), arguments)


def test_a_ref_cycle_is_reported_as_invalid_arguments() -> None:
    schema = {"type": "object", "$defs": {"A": {"$ref": "#/$defs/A"}}, "properties": {"x": {"$ref": "#/$defs/A"}}}
    with pytest.raises(InvalidArguments):
        compile_schema(schema).validate({"x": 1})
