"""Tool arguments from the command line: ``--arg k=v`` pairs over an ``--args`` JSON object.

A value is parsed as JSON when it parses (``5``, ``true``, ``null``, ``["a@b.co"]``) and is a
string otherwise. One exception keeps the common case painless: when the tool's schema
says a property is a string and does not accept the parsed JSON type, the raw text is
sent (``--arg code=123456`` for a string ``code`` sends ``"123456"``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = ["load_args_object", "pair", "parse_arguments"]

_JSON_TYPES: dict[type, str] = {str: "string", bool: "boolean", int: "integer", float: "number",
                                type(None): "null", list: "array", dict: "object"}


def load_args_object(spec: str) -> dict[str, Any]:
    """``--args``: a JSON object given inline, as ``@file.json``, or ``@-`` for stdin.

    Raises:
        ConfigError: unreadable file, invalid JSON, or JSON that is not an object.
    """
    source = "--args"
    if spec.startswith("@"):
        name = spec[1:]
        source = "stdin" if name == "-" else name
        try:
            text = sys.stdin.read() if name == "-" else Path(name).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"--args: file not found: {name}") from None
        except OSError as e:
            raise ConfigError(f"--args: cannot read {name}: {e.strerror}") from None
    else:
        text = spec
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ConfigError(f"--args ({source}): invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"--args ({source}): expected a JSON object, got {_json_type(value)}")
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
    """``--arg`` as argparse sees it: ``NAME=VALUE`` split at the first ``=``.

    Raises:
        argparse.ArgumentTypeError: no ``=`` or no name (checked before any server starts).
    """
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError("expected NAME=VALUE")
    return key, value


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
