"""Tool arguments from the command line: ``--arg k=v`` pairs over an ``--args`` JSON object.

A value is parsed as JSON when it parses (``5``, ``true``, ``null``, ``["a@b.co"]``) and is a
string otherwise. One exception keeps the common case painless: when the tool's schema
says a property is a string and does not accept the parsed JSON type, the raw text is
sent (``--arg code=123456`` for a string ``code`` sends ``"123456"``).

``argument_problems`` checks the result against the tool's inputSchema the way the bridge
does before every call (same draft, formats and local-only ``$ref``s), but names every
invalid argument at once and spells values as JSON (``true``, ``null``, ``"text"``), as
they were typed.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..secrets import clip, mask_data

__all__ = ["Problem", "Problems", "argument_problems", "load_args_object", "pair", "parse_arguments",
           "parse_pairs", "undeclared_names"]

_JSON_TYPES: dict[type, str] = {str: "string", bool: "boolean", int: "integer", float: "number",
                                type(None): "null", list: "array", dict: "object"}
# A value quoted in a message is cut here: the point is which argument, not the whole value.
_QUOTED_MAX = 60


def load_args_object(spec: str) -> dict[str, Any]:
    """``--args``: a JSON object given inline, as ``@file.json``, or ``@-`` for stdin.

    Raises:
        ConfigError: unreadable file, invalid JSON, or JSON that is not an object.
    """
    source = "--args"
    if spec.startswith("@"):
        name = spec[1:]
        source = f"--args {spec}"
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{source}: file not found") from None
        except OSError as e:
            raise ConfigError(f"{source}: cannot read it: {e.strerror}") from None
    else:
        text = spec
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"{source}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: expected a JSON object, got {_json_type(value)}")
    return value


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _accepts(schema: Any, json_type: str) -> bool | None:
    """Whether ``schema``'s ``type`` admits ``json_type``; ``None`` when it has no plain ``type``."""
    if not isinstance(schema, Mapping):
        return None
    kind = schema.get("type")
    kinds = [kind] if isinstance(kind, str) else kind if isinstance(kind, list) else None
    if kinds is None:
        return None
    return json_type in kinds or (json_type == "integer" and "number" in kinds)


def _value(text: str, prop_schema: Any) -> Any:
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    if isinstance(parsed, str):
        return parsed
    # A string property that would not take the parsed value gets the text as typed.
    if _accepts(prop_schema, _json_type(parsed)) is False and _accepts(prop_schema, "string"):
        return text
    return parsed


def pair(text: str) -> tuple[str, str]:
    """One ``--arg``: ``NAME=VALUE`` split at the first ``=``.

    Raises:
        argparse.ArgumentTypeError: no ``=`` or no name.
    """
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError("expected NAME=VALUE")
    return key, value


def parse_pairs(items: Sequence[str]) -> list[tuple[str, str]]:
    """Every ``--arg`` split into name and value (checked before any server starts).

    Raises:
        ConfigError: naming every malformed ``--arg`` by position (a value typed in the wrong
            place may be a credential, so it is never quoted).
    """
    pairs: list[tuple[str, str]] = []
    bad: list[str] = []
    for n, item in enumerate(items, 1):
        try:
            pairs.append(pair(item))
        except argparse.ArgumentTypeError:
            bad.append(f"#{n}")
    if bad:
        raise ConfigError(f"--arg {', '.join(bad)}: expected NAME=VALUE")
    return pairs


def parse_arguments(pairs: Sequence[tuple[str, str]], base: Mapping[str, Any] | None = None,
                    input_schema: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The arguments object for a call: ``base`` (from ``--args``) with each ``--arg`` applied over it.

    ``input_schema`` lets a string property keep text that happens to parse as JSON.
    """
    arguments = dict(base or {})
    props = (input_schema or {}).get("properties")
    props = props if isinstance(props, Mapping) else {}
    for key, text in pairs:
        arguments[key] = _value(text, props.get(key))
    return arguments


@dataclass(frozen=True)
class Problem:
    """One invalid argument: where (``items[0].sku``, empty for the whole object), what, which rule."""

    argument: str
    message: str
    rule: str

    def __str__(self) -> str:
        where = f"argument {self.argument!r}" if self.argument else "arguments"
        return f"invalid {where}: {self.message} (rule: {self.rule})"


@dataclass(frozen=True)
class Problems:
    """Every invalid argument of one call, in the order of the arguments."""

    items: tuple[Problem, ...]

    @property
    def first(self) -> Problem:
        return self.items[0]

    @property
    def message(self) -> str:
        """One line: the problem itself, or ``N invalid arguments: 'a': ...; 'b': ...``."""
        if len(self.items) == 1:
            return str(self.first)
        parts = [f"{p.argument or '(arguments)'!r}: {p.message} (rule: {p.rule})" for p in self.items]
        return f"{len(self.items)} invalid arguments: " + "; ".join(parts)

    def __bool__(self) -> bool:
        return bool(self.items)


def _json(value: Any) -> str:
    # Masked before it is cut: half a secret would no longer be recognised as one downstream.
    return clip(json.dumps(mask_data(value), ensure_ascii=False, default=str), _QUOTED_MAX, "…")


def _path(error: Any) -> str:
    parts: list[str] = []
    for item in error.absolute_path:
        parts.append(f"[{item}]" if isinstance(item, int) else (f".{item}" if parts else str(item)))
    return "".join(parts)


def _json_spelled(error: Any) -> str:
    """jsonschema's message with the Python reprs of the values in it spelled as JSON."""
    message: str = error.message
    values = [error.instance, error.validator_value]
    if isinstance(error.validator_value, list):
        values += error.validator_value
    for value in values:
        # Numbers read the same in both; only true/false/null, strings and containers differ.
        if isinstance(value, bool | str | list | dict) or value is None:
            spelled = repr(value)
            if spelled in message:
                message = message.replace(spelled, _json(value))
    return message


def _extra_names(instance: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    props = schema.get("properties")
    known = set(props) if isinstance(props, Mapping) else set()
    patterns = schema.get("patternProperties")
    regexes = [str(p) for p in patterns] if isinstance(patterns, Mapping) else []
    return [k for k in instance if k not in known and not any(re.search(r, k) for r in regexes)]


def _problems_of(error: Any) -> list[Problem]:
    rule = str(error.validator)
    path = _path(error)
    if rule == "required" and isinstance(error.validator_value, list):
        # One error per missing name; only its message says which.
        missing = next((name for name in error.validator_value
                        if error.message == f"{name!r} is a required property"), None)
        if isinstance(missing, str):
            where = f"{path}.{missing}" if path else missing
            return [Problem(where, f"{missing!r} is a required property", rule)]
    if rule == "additionalProperties" and isinstance(error.instance, Mapping) and isinstance(error.schema, Mapping):
        extras = _extra_names(error.instance, error.schema)
        if extras:
            props = error.schema.get("properties")
            declared = [str(k) for k in props] if isinstance(props, Mapping) else []
            return [Problem(f"{path}.{name}" if path else name, "not an argument of this tool" + _did_you_mean(
                name, [d for d in declared if d not in error.instance]), rule) for name in extras]
    return [Problem(path, _json_spelled(error), rule)]


def _did_you_mean(name: str, declared: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(declared), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def undeclared_names(input_schema: Mapping[str, Any], arguments: Mapping[str, Any]) -> dict[str, str]:
    """Top-level argument names the schema does not declare but lets through (it allows extra
    properties), each with the declared name it most resembles: likely misspellings."""
    props = input_schema.get("properties")
    declared = [str(k) for k in props] if isinstance(props, Mapping) else []
    found: dict[str, str] = {}
    for name in arguments:
        if name not in declared:
            close = difflib.get_close_matches(name, declared, n=1, cutoff=0.6)
            if close:
                found[name] = close[0]
    return found


def argument_problems(input_schema: Mapping[str, Any], arguments: Mapping[str, Any]) -> Problems:
    """Every argument that breaks ``input_schema`` (one problem per argument), or none.

    A schema that cannot be checked (itself invalid, or a ``$ref`` that does not resolve) gives
    no problems here: the bridge's own check before the call reports it.
    """
    from jsonschema import exceptions as js_exceptions
    from jsonschema import validators as js_validators
    from referencing import Registry
    from referencing.exceptions import Unresolvable

    from ..schema import format_checker_for

    schema = dict(input_schema)
    try:
        cls = js_validators.validator_for(schema, default=js_validators.Draft202012Validator)
        cls.check_schema(schema)
        # An empty registry that fetches nothing: a network $ref is never followed.
        validator = cls(schema, registry=Registry(), format_checker=format_checker_for(cls))
        errors = list(validator.iter_errors(dict(arguments)))
    except (js_exceptions.SchemaError, Unresolvable, RecursionError):
        return Problems(())
    by_argument: dict[str, list[Any]] = {}
    for error in errors:
        relevant = js_exceptions.best_match([error])  # into anyOf/oneOf: the branch that came closest
        if relevant is None:
            continue
        key = _path(relevant)
        if str(relevant.validator) in ("required", "additionalProperties"):
            key = f"{key}\0{id(relevant)}"  # each names its own arguments, not the object's path
        by_argument.setdefault(key, []).append(relevant)
    found: list[Problem] = []
    for group in by_argument.values():
        best = js_exceptions.best_match(group)
        if best is not None:
            found += [p for p in _problems_of(best) if p.argument not in {q.argument for q in found}]
    order = {name: i for i, name in enumerate(arguments)}
    found.sort(key=lambda p: order.get(re.split(r"[.\[]", p.argument, maxsplit=1)[0], len(order)))
    return Problems(tuple(found))
