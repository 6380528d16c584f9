"""A fast first verdict on a tool's arguments: jsonschema-rs, where it agrees with jsonschema.

jsonschema (Python) is the authority on arguments: its verdicts and its error messages are
what users see. It costs ~15 µs for even a one-field schema, a large share of a call on a
local server, while jsonschema-rs answers in well under a microsecond. So a call asks
jsonschema-rs first and takes a "valid" as final; anything else goes to jsonschema, which then
decides (and explains). A "valid" from jsonschema-rs must therefore never be one jsonschema
would refuse, so it is only used on schemas where the two provably agree:

* formats are checked by jsonschema's own checkers (handed to jsonschema-rs as callbacks);
* no regular expressions (``pattern``, ``patternProperties``): jsonschema-rs speaks ECMA-262,
  jsonschema Python's ``re``, and the two dialects match different strings;
* no fractional ``multipleOf`` (jsonschema's float arithmetic refuses ``0.3`` as a multiple
  of ``0.1``; jsonschema-rs accepts it);
* no dynamic references, only local ``$ref``, and no reference cycle that consumes no input
  (jsonschema reports those as an error; jsonschema-rs accepts);
* a dialect both know.

It never fetches: jsonschema-rs runs offline, like the Python validator's registry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import jsonschema_rs

__all__ = ["FastCheck", "fast_validator"]

logger = logging.getLogger("bridge.schema")

FastCheck = Callable[[Any], bool]

_DIALECTS = {
    "http://json-schema.org/draft-04/schema": jsonschema_rs.Draft4Validator,
    "http://json-schema.org/draft-06/schema": jsonschema_rs.Draft6Validator,
    "http://json-schema.org/draft-07/schema": jsonschema_rs.Draft7Validator,
    "https://json-schema.org/draft/2019-09/schema": jsonschema_rs.Draft201909Validator,
    "https://json-schema.org/draft/2020-12/schema": jsonschema_rs.Draft202012Validator,
}
_DISAGREE = frozenset({"pattern", "patternProperties", "$dynamicRef", "$recursiveRef"})
# Where a schema holds sub-schemas: alone (or a draft-07 list), in a list, or by name.
_ONE = frozenset({"items", "additionalItems", "additionalProperties", "unevaluatedItems", "unevaluatedProperties",
                  "contains", "propertyNames", "not", "if", "then", "else"})
_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_MAPS = frozenset({"properties", "$defs", "definitions", "dependentSchemas", "dependencies"})
# Keywords that apply a sub-schema to the same instance: a reference cycle through only these
# never reaches a smaller part of the input, so it never ends.
_IN_PLACE_ONE = frozenset({"not", "if", "then", "else"})
_IN_PLACE_LISTS = frozenset({"allOf", "anyOf", "oneOf"})
_IN_PLACE_MAPS = frozenset({"dependentSchemas", "dependencies"})


Resolver = Callable[[Mapping[str, Any], str], "tuple[Mapping[str, Any], tuple[str, ...]] | None"]


def fast_validator(schema: Mapping[str, Any], format_checker: Any, resolve: Resolver) -> FastCheck | None:
    """``is_valid`` of a jsonschema-rs validator for ``schema``, or ``None`` where it may disagree.

    Args:
        format_checker: the jsonschema ``FormatChecker`` the Python validator uses; its checks
            are the formats jsonschema-rs enforces, so both agree on every format.
        resolve: follows a local ``$ref`` to its sub-schema (``None`` where it leads nowhere).
    """
    dialect = schema.get("$schema", "https://json-schema.org/draft/2020-12/schema")
    draft = _DIALECTS.get(str(dialect).rstrip("#")) if isinstance(dialect, str) else None
    if draft is None or not _agrees(schema, schema, resolve):
        return None
    formats = {name: _format(format_checker, name) for name in format_checker.checkers}
    try:
        validator = draft(dict(schema), formats=formats, validate_formats=True, ignore_unknown_formats=True,
                          offline=True)
    except Exception as e:  # jsonschema keeps deciding on its own
        logger.debug("no fast validator: %s", e)
        return None
    check: FastCheck = validator.is_valid
    return check


def _format(checker: Any, name: str) -> Callable[[str], bool]:
    def conforms(value: str) -> bool:
        return bool(checker.conforms(value, name))

    return conforms


def _agrees(root: Mapping[str, Any], node: Any, resolve: Resolver) -> bool:
    """Whether every sub-schema of ``node`` is one both validators judge alike."""
    if not isinstance(node, Mapping):
        return isinstance(node, bool) or (isinstance(node, list) and all(_agrees(root, n, resolve) for n in node))
    if _DISAGREE & node.keys():
        return False
    multiple = node.get("multipleOf")
    if isinstance(multiple, float) and not multiple.is_integer():
        return False
    ref = node.get("$ref")
    if ref is not None and not (isinstance(ref, str) and resolve(root, ref) is not None
                                and not _cycles(root, ref, resolve)):
        return False
    for key, value in node.items():
        if key in _ONE or key in _LISTS:
            if not _agrees(root, value, resolve):
                return False
        elif key in _MAPS and isinstance(value, Mapping) and not all(
                (isinstance(v, list) and key == "dependencies") or _agrees(root, v, resolve) for v in value.values()):
            return False  # (draft-07 `dependencies` mixes schemas with lists of names)
    return True


def _cycles(root: Mapping[str, Any], start: str, resolve: Resolver) -> bool:
    """Whether following ``start`` through in-place keywords can come back to it."""
    seen: set[str] = set()
    pending = [start]
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        found = resolve(root, ref)
        stack: list[Any] = [found[0]] if found is not None else []
        while stack:
            node = stack.pop()
            if not isinstance(node, Mapping):
                continue
            inner = node.get("$ref")
            if isinstance(inner, str):
                if inner == start:
                    return True
                pending.append(inner)
            stack.extend(node[k] for k in _IN_PLACE_ONE if k in node)
            for k in _IN_PLACE_LISTS:
                if isinstance(node.get(k), list):
                    stack.extend(node[k])
            for k in _IN_PLACE_MAPS:
                if isinstance(node.get(k), Mapping):
                    stack.extend(node[k].values())  # (draft-07 lists of names are skipped above)
    return False
