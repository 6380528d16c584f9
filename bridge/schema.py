"""JSON Schema -> typed Python parameters, a signature, and a validator. Pure; no I/O.

This is the framework-neutral heart of the conversion: ``compile_schema`` takes a tool's
``inputSchema`` and yields a ``CompiledSchema`` that any agent framework can wrap
(AutoGen first; AG2 or MetaGPT adapters need only the same three things).

The schema itself is never rewritten: what the model sees is the server's inputSchema
as sent. Types are *derived* from it for introspection and for frameworks that build
models from signatures; validation always runs against the original schema with
jsonschema (formats checked, local ``$ref`` only, never a network fetch).

Type mapping (documented in the README's schema table):
``string``/``integer``/``number``/``boolean``/``null`` -> ``str``/``int``/``float``/``bool``/``None``;
``enum``/``const`` -> ``Literal[...]``; ``array`` -> ``list[T]``; an object with
``properties`` -> a ``TypedDict`` (required keys ``Required``); an object whose only shape is
``additionalProperties: {schema}`` -> ``dict[str, T]``; ``anyOf``/``oneOf``/type arrays -> unions;
``allOf`` of objects -> one merged ``TypedDict``; ``$ref``/``$defs``/``definitions`` are followed,
and a recursive reference becomes ``dict[str, Any]`` at the point it recurs. Anything else is ``Any``.
"""

from __future__ import annotations

import copy
import inspect
import keyword
import logging
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BaseModel
from typing_extensions import NotRequired, Required, TypedDict

from .errors import InvalidArguments
from .secrets import clip

if TYPE_CHECKING:
    from jsonschema.exceptions import ValidationError
    from jsonschema.protocols import Validator
    from referencing import Registry

    from .fast_validator import FastCheck

# jsonschema (with referencing and its format checkers, ~0.1 s to import) and jsonschema-rs load
# at the first validation: listing a catalogue, which is all ``mcp-bridge tools`` does, never needs it.

__all__ = ["OMIT", "CompiledSchema", "Parameter", "compile_schema", "endless_recursion", "format_checker_for",
           "python_identifier"]

logger = logging.getLogger("bridge.schema")
OPEN_ENDED = "no declared properties"
"""Why an object schema without properties is not typed: its exact signature is ``(**arguments)``."""

_MAX_DEPTH = 12
_PRIMITIVES: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool, "null": type(None)}
# Names an AutoGen/pydantic args model cannot have as fields, plus AutoGen's own hook.
_RESERVED = {n for n in dir(BaseModel) if not n.startswith("_")} | {"cancellation_token", "self"}


class _Omitted:
    """Default of every optional parameter: "the caller did not pass this"; it is never sent.

    Distinct from ``None``, which is sent as JSON ``null`` (servers use it to clear a field).
    """

    _instance: _Omitted | None = None

    def __new__(cls) -> _Omitted:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "OMIT"

    def __bool__(self) -> bool:
        return False


OMIT: Any = _Omitted()


def python_identifier(name: str, taken: set[str] | None = None) -> str:
    """A valid, non-reserved Python identifier for a JSON property name, unique within ``taken``.

    ``from`` -> ``from_``, ``schema`` -> ``schema_``, ``data-type`` -> ``data_type``,
    ``2fa`` -> ``arg_2fa``, ``café`` -> ``cafe``. The mapping is deterministic.
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    ident = re.sub(r"\W", "_", ascii_name) or "arg"
    if ident[0].isdigit() or ident.startswith("_"):
        ident = "arg" + ("" if ident.startswith("_") else "_") + ident
    if keyword.iskeyword(ident) or keyword.issoftkeyword(ident) or ident in _RESERVED:
        ident += "_"
    if taken is not None:
        base, n = ident, 2
        while ident in taken:
            ident = f"{base}_{n}"
            n += 1
        taken.add(ident)
    return ident


@dataclass(frozen=True)
class Parameter:
    """One top-level argument: its wire name, the Python name used in the signature, and its type."""

    name: str
    py_name: str
    annotation: Any
    required: bool
    description: str | None
    schema: Mapping[str, Any]


@dataclass(frozen=True)
class _Shape:
    """What typing derives from a schema: the parameters and the signature."""

    parameters: tuple[Parameter, ...]
    signature: inspect.Signature
    typed: bool = True
    reason: str = ""


class CompiledSchema:
    """A tool's inputSchema made usable from Python.

    Typing and the validator are derived on first use, so a catalogue of thousands of tools
    pays only for the tools something looks at. Deriving never raises.

    Attributes:
        schema: the original inputSchema, untouched (this is what a model is shown).
        parameters: the top-level arguments in schema order.
        signature: keyword-only, typed; optional parameters default to ``OMIT``.
        typed: False when the schema was too exotic to type; the signature is then
            ``(**arguments: Any)`` and ``reason`` says why.
    """

    def __init__(self, schema: Mapping[str, Any], *, name: str = "tool") -> None:
        self.schema = schema
        self.name = name
        self._shape: _Shape | None = None
        self._validator: Validator | None = None
        self._validator_error: str | None = None
        self._fast: FastCheck | None = None
        self._compiled = False

    def __repr__(self) -> str:
        return f"CompiledSchema(name={self.name!r})"

    def _derive(self) -> _Shape:
        if self._shape is None:
            try:
                self._shape = _compile(self.schema, self.name)
            except Exception as e:  # one odd tool must never break the catalogue
                self._shape = _untyped(f"{type(e).__name__}: {e}")
            # An object with no declared properties is exactly (**arguments): nothing to warn about.
            if not self._shape.typed and self._shape.reason != OPEN_ENDED:
                logger.warning("tool %r: schema too exotic to type (%s); registered with its raw schema and "
                               "(**arguments)", self.name, self._shape.reason)
        return self._shape

    @property
    def parameters(self) -> tuple[Parameter, ...]:
        return self._derive().parameters

    @property
    def signature(self) -> inspect.Signature:
        return self._derive().signature

    @property
    def typed(self) -> bool:
        return self._derive().typed

    @property
    def reason(self) -> str:
        return self._derive().reason

    @property
    def annotations(self) -> dict[str, Any]:
        """``__annotations__`` for a function with this signature (AutoGen reads these)."""
        return {p.name: p.annotation for p in self.signature.parameters.values()}

    def _ensure_validator(self) -> Validator | None:
        # Compiling costs ~60x a validation; catalogues can hold thousands of tools that are
        # never called, so compile on first use.
        if not self._compiled:
            self._compiled = True
            from jsonschema import SchemaError, validators

            from .fast_validator import fast_validator

            try:
                cls = validators.validator_for(self.schema, default=validators.Draft202012Validator)
                cls.check_schema(dict(self.schema))
                checker = format_checker_for(cls)
                self._validator = cls(self.schema, registry=_local_only(), format_checker=checker)
                self._fast = fast_validator(self.schema, checker, resolve_local_ref)
            except SchemaError as e:
                self._validator_error = f"the tool's inputSchema is itself invalid ({e.message})"
                logger.warning("argument validation disabled: %s", self._validator_error)
        return self._validator

    def validate(self, arguments: Mapping[str, Any]) -> None:
        """Check ``arguments`` against the original inputSchema.

        Raises:
            InvalidArguments: names the argument (``to[0]``, ``filter.sender``) and the rule broken.
        """
        validator = self._ensure_validator()
        if validator is None:
            return
        fast = self._fast
        if fast is not None:
            try:
                if fast(arguments):
                    return
            except Exception:  # a value jsonschema-rs cannot take (not JSON): jsonschema decides
                pass
        from jsonschema.exceptions import best_match
        from referencing.exceptions import Unresolvable

        try:
            error = best_match(validator.iter_errors(dict(arguments)))
        except Unresolvable as e:
            raise InvalidArguments(f"cannot check arguments: unresolvable $ref ({e})", rule="$ref") from None
        except BaseException as e:
            if not endless_recursion(e):
                raise
            # A $ref cycle that consumes no input ({"$ref": "#/$defs/A"} inside A) never ends.
            raise InvalidArguments("cannot check arguments: the tool's schema has a $ref cycle that never ends",
                                   rule="$ref") from None
        if error is None:
            return
        argument = _error_path(error)
        rule = str(error.validator)
        # Masked before the cut: the message quotes the argument, which may hold a known secret.
        message = clip(error.message, 300, "...")
        where = f"argument {argument!r}" if argument else "arguments"
        raise InvalidArguments(f"invalid {where}: {message} (rule: {rule})", argument=argument, rule=rule)

    def to_wire(self, kwargs: Mapping[str, Any]) -> dict[str, Any]:
        """Python keyword arguments -> wire arguments: renamed back, ``OMIT`` dropped, ``None`` kept."""
        if not self.typed:
            return {k: v for k, v in kwargs.items() if v is not OMIT}
        by_py = {p.py_name: p.name for p in self.parameters}
        unknown = [k for k in kwargs if k not in by_py]
        if unknown:
            raise InvalidArguments(f"unexpected keyword argument {unknown[0]!r}", argument=unknown[0],
                                   rule="additionalProperties")
        return {by_py[k]: v for k, v in kwargs.items() if v is not OMIT}


# jsonschema's own "email" check only looks for an "@", so "maria@" passes locally and fails at
# the server (MultiMail validates with zod). One local-part, one dotted domain, no spaces.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")
_CHECKERS: dict[type[Any], Any] = {}


def endless_recursion(error: BaseException) -> bool:
    """Whether ``error`` is Python running out of stack, as jsonschema does on a ``$ref`` cycle.

    Deep enough, the RecursionError is raised inside ``rpds`` (the Rust maps under
    ``referencing``), which turns it into a pyo3 ``PanicException`` (a BaseException) that only
    its text identifies.
    """
    return isinstance(error, RecursionError) or (type(error).__name__ == "PanicException"
                                                 and "RecursionError" in str(error))


def format_checker_for(cls: type[Any]) -> Any:
    """The format checker used for ``cls`` (a jsonschema validator class).

    jsonschema's own, except ``email``/``idn-email``: one local part, ``@``, a dotted domain
    and no spaces, as the servers we talk to validate them.
    """
    checker = _CHECKERS.get(cls)
    if checker is None:
        checker = copy.deepcopy(cls.FORMAT_CHECKER)
        for fmt in ("email", "idn-email"):
            checker.checks(fmt)(lambda value: not isinstance(value, str) or bool(_EMAIL.match(value)))
        _CHECKERS[cls] = checker
    return checker


def _no_fetch(uri: str) -> Any:
    # A tool schema must never make us fetch a URL; an external $ref simply does not resolve.
    from referencing.exceptions import NoSuchResource

    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]


@cache
def _local_only() -> Registry[Any]:
    from referencing import Registry

    return Registry(retrieve=_no_fetch)  # type: ignore[call-arg]


def _error_path(error: ValidationError) -> str:
    parts: list[str] = []
    for item in error.absolute_path:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(f".{item}" if parts else str(item))
    path = "".join(parts)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = re.match(r"'([^']+)' is a required property", error.message)
        if missing:
            return f"{path}.{missing.group(1)}" if path else missing.group(1)
    return path


def resolve_local_ref(root: Mapping[str, Any], ref: str) -> tuple[Mapping[str, Any], tuple[str, ...]] | None:
    """Follow a local ``$ref`` (``#``, ``#/$defs/X``) to its sub-schema and the pointer's parts.

    ``None`` for an external reference (never fetched) or a pointer that leads nowhere.
    """
    if not ref.startswith("#"):
        return None
    node: Any = root
    parts = tuple(p.replace("~1", "/").replace("~0", "~") for p in ref[2:].split("/")) if ref.startswith("#/") else ()
    for key in parts:
        if isinstance(node, Mapping) and key in node:
            node = node[key]
        elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
            node = node[int(key)]
        else:
            return None
    return (node, parts) if isinstance(node, Mapping) else None


class _Typer:
    """Derives Python types from one tool's schema; names nested TypedDicts after their path."""

    def __init__(self, root: Mapping[str, Any], owner: str) -> None:
        self.root = root
        self.owner = _camel(owner) or "Tool"
        self.active_refs: list[str] = []
        self.names: set[str] = set()

    def resolve(self, ref: str) -> Mapping[str, Any] | None:
        found = resolve_local_ref(self.root, ref)
        return found[0] if found else None

    def type_of(self, node: Any, hint: str, depth: int = 0) -> Any:
        if node is True or node is None or not isinstance(node, Mapping) or depth > _MAX_DEPTH:
            return Any
        if node is False:
            return Any
        if "$ref" in node:
            ref = str(node["$ref"])
            if ref in self.active_refs:
                return dict[str, Any]  # recursion: stop typing where the schema recurs
            target = self.resolve(ref)
            if target is None:
                return Any
            self.active_refs.append(ref)
            try:
                return self.type_of(target, ref.rsplit("/", 1)[-1] or hint, depth + 1)
            finally:
                self.active_refs.pop()
        if "const" in node:
            return _literal([node["const"]])
        if "enum" in node and isinstance(node["enum"], list) and node["enum"]:
            return _literal(node["enum"])
        for key in ("anyOf", "oneOf"):
            if isinstance(node.get(key), list):
                return _union([self.type_of(b, hint, depth + 1) for b in node[key]])
        if isinstance(node.get("allOf"), list):
            parts = [self.resolve(str(p["$ref"])) if isinstance(p, Mapping) and "$ref" in p else p
                     for p in node["allOf"]]
            if all(isinstance(p, Mapping) and _is_object(p) for p in parts):
                merged: dict[str, Any] = {"type": "object", "properties": {}, "required": []}
                for p in parts:
                    assert isinstance(p, Mapping)
                    merged["properties"].update(p.get("properties") or {})
                    merged["required"] += list(p.get("required") or [])
                return self.type_of(merged, hint, depth + 1)
            if len(parts) == 1:
                return self.type_of(parts[0], hint, depth + 1)
            return Any
        kind = node.get("type")
        if isinstance(kind, list):
            return _union([self.type_of({**node, "type": k}, hint, depth + 1) for k in kind])
        if kind in _PRIMITIVES and kind != "null":
            return _PRIMITIVES[kind]
        if kind == "null":
            return type(None)
        if kind == "array" or (kind is None and "items" in node):
            items = node.get("items")
            return list[self.type_of(items, hint + "Item", depth + 1)]  # type: ignore[misc]
        if kind == "object" or (kind is None and ("properties" in node or "additionalProperties" in node)):
            return self.object_type(node, hint, depth)
        return Any

    def object_type(self, node: Mapping[str, Any], hint: str, depth: int) -> Any:
        props = node.get("properties")
        extra = node.get("additionalProperties")
        if not isinstance(props, Mapping) or not props:
            if isinstance(extra, Mapping):
                return dict[str, self.type_of(extra, hint + "Value", depth + 1)]  # type: ignore[misc]
            return dict[str, Any]
        required = set(node.get("required") or [])
        fields: dict[str, Any] = {}
        for key, sub in props.items():
            t = self.type_of(sub, hint + _camel(key), depth + 1)
            desc = sub.get("description") if isinstance(sub, Mapping) else None
            if isinstance(desc, str) and desc:
                t = Annotated[t, desc]
            fields[str(key)] = Required[t] if key in required else NotRequired[t]
        return TypedDict(self.unique_name(hint), fields)  # type: ignore[operator]

    def unique_name(self, hint: str) -> str:
        base = self.owner + _camel(hint)
        name, n = base, 2
        while name in self.names:
            name, n = f"{base}{n}", n + 1
        self.names.add(name)
        return name


def _camel(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(w[:1].upper() + w[1:] for w in re.split(r"[^A-Za-z0-9]+", ascii_text) if w)


def _literal(values: list[Any]) -> Any:
    if all(isinstance(v, str | int | bool) or v is None for v in values):
        return Literal[tuple(values)]  # type: ignore[valid-type]
    return Any


def _union(types: list[Any]) -> Any:
    unique: list[Any] = []
    for t in types:
        if t is Any:
            return Any
        if t not in unique:
            unique.append(t)
    if not unique:
        return Any
    return unique[0] if len(unique) == 1 else Union[tuple(unique)]  # noqa: UP007 - built from a runtime list


def _is_object(node: Mapping[str, Any]) -> bool:
    return node.get("type") == "object" or "properties" in node


def _untyped(reason: str) -> _Shape:
    sig = inspect.Signature([inspect.Parameter("arguments", inspect.Parameter.VAR_KEYWORD, annotation=Any)])
    return _Shape(parameters=(), signature=sig, typed=False, reason=reason)


def compile_schema(schema: Mapping[str, Any] | None, *, name: str = "tool") -> CompiledSchema:
    """Compile a tool's inputSchema (lazily). Never raises: an untypeable schema yields ``typed=False``.

    ``name`` only seeds the names of generated ``TypedDict`` classes.
    """
    return CompiledSchema(schema if isinstance(schema, Mapping) else {"type": "object"}, name=name)


def _compile(schema: Mapping[str, Any], name: str) -> _Shape:
    typer = _Typer(schema, name)
    root: Mapping[str, Any] = schema
    if "$ref" in schema and not schema.get("properties"):
        root = typer.resolve(str(schema["$ref"])) or schema
    props = root.get("properties")
    if props is not None and not isinstance(props, Mapping):
        return _untyped("'properties' is not an object")
    for key in ("anyOf", "oneOf"):
        if key in root and not props:
            return _untyped(f"top-level {key} has no single parameter list")
    required = set(root.get("required") or [])
    taken: set[str] = set()
    params: list[Parameter] = []
    sig_params: list[inspect.Parameter] = []
    for key, sub in (props or {}).items():
        key = str(key)
        py = python_identifier(key, taken)
        annotation = typer.type_of(sub, _camel(key))
        desc = sub.get("description") if isinstance(sub, Mapping) else None
        desc = desc if isinstance(desc, str) and desc else None
        shown = Annotated[annotation, desc] if desc else annotation
        is_required = key in required
        params.append(Parameter(key, py, annotation, is_required, desc, sub if isinstance(sub, Mapping) else {}))
        sig_params.append(inspect.Parameter(py, inspect.Parameter.KEYWORD_ONLY, annotation=shown,
                                            default=inspect.Parameter.empty if is_required else OMIT))
    extra = root.get("additionalProperties", True)
    if not props and extra not in (False, None):
        # No declared properties but extra keys allowed: keep the call open-ended.
        value_type = typer.type_of(extra, "Value") if isinstance(extra, Mapping) else Any
        sig_params.append(inspect.Parameter("arguments", inspect.Parameter.VAR_KEYWORD, annotation=value_type))
        return _Shape(parameters=(), signature=inspect.Signature(sig_params), typed=False,
                              reason=OPEN_ENDED)
    return _Shape(parameters=tuple(params), signature=inspect.Signature(sig_params))
