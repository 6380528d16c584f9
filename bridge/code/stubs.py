"""Typed Python stubs of an agent's tools, as the model and the sandbox's type checker read them.

Each tool becomes ``async def name(*, arg: T, opt: T = ...) -> R`` with its description as the
docstring. The types come from the schema layer (``bridge.schema``: ``TypedDict`` for objects,
``Literal`` for enums, ``NotRequired`` for optional keys); the result type from the tool's
outputSchema, else ``str`` (the result's text). The server's schema stays the validator.

Everything here is written by a server, so nothing of it reaches the source unescaped: function
and class names are made identifiers (``python_identifier``, unique, never a builtin or one of
the sandbox's own names), keys and enum values are Python literals (``repr``), and docstrings are
made inert (``bridge.sanitize.visible``, then every backslash and quote escaped). The stubs are
only ever parsed (``ast.parse``, to prove the escaping), never executed in this process.
"""

from __future__ import annotations

import ast
import builtins
import keyword
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

import typing_extensions

from ..catalogue import ToolEntry
from ..sanitize import visible
from ..schema import compile_schema, python_identifier

__all__ = ["CALL_TOOL", "FIND_TOOLS", "SANDBOX_NAMES", "StubbedTool", "Stubs", "docstring", "render_stubs", "stub_of"]

FIND_TOOLS = "find_tools"
CALL_TOOL = "call_tool"

SANDBOX_NAMES = frozenset({FIND_TOOLS, CALL_TOOL, "ToolError", "TypedDict", "NotRequired", "Literal", "Any",
                           "json", "re", "math", "datetime", "asyncio", "typing"})
"""Names the sandbox defines itself: a tool never takes one (nor a builtin's)."""

_HEADER = "from typing import Any, Literal, NotRequired, TypedDict\n\n"
_ERRORS = ("class ToolError(RuntimeError):\n"
           '    """A tool answered with an error (its isError result); str(e) is its text."""\n')
# The sandbox's type checker does not know every builtin exception the runtime raises.
_CHECKER_SHIMS = "class PermissionError(OSError): ...\n"
_SEARCH = (
    f"async def {FIND_TOOLS}(query: str, limit: int = 5) -> list[dict[str, str]]:\n"
    '    """Search all of this agent\'s tools; each match has "name", "description" and "stub" '
    '(print it to read its signature)."""\n\n'
    f"async def {CALL_TOOL}(name: str, arguments: dict[str, Any]) -> Any:\n"
    '    """Call a tool find_tools returned, by name, with its arguments as a dict."""\n'
)
_DOC_MAX = 1500
# The schema layer builds its types with typing_extensions; either spelling may come back.
_REQUIRED = {typing.Required, typing_extensions.Required}
_NOT_REQUIRED = {typing.NotRequired, typing_extensions.NotRequired}
get_args, get_origin, is_typeddict = typing_extensions.get_args, typing_extensions.get_origin, \
    typing_extensions.is_typeddict


@dataclass(frozen=True)
class StubbedTool:
    """One tool as the sandbox calls it: its Python name and the entry it leads to."""

    py_name: str
    entry: ToolEntry
    source: str


@dataclass(frozen=True)
class Stubs:
    """The stubs of a set of tools.

    Attributes:
        source: what the model is shown (types, then one function per tool).
        checker: what the sandbox's type checker is given (``source`` plus shims for its gaps).
        tools: by Python name.
    """

    source: str
    checker: str
    tools: Mapping[str, StubbedTool]


def docstring(text: str, indent: str = "    ") -> str:
    """``text`` as an inert docstring: visible characters only, every backslash and quote escaped,
    so nothing in it can end the string; cut to a bounded length."""
    text = visible(text.strip())
    if len(text) > _DOC_MAX:
        text = text[:_DOC_MAX] + " [...]"
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    lines = text.splitlines() or [""]
    body = "\n".join(f"{indent}{line.rstrip()}" if line.strip() else "" for line in lines)[len(indent):]
    return f'{indent}"""{body}"""\n'


class _Namer:
    """Stub-wide unique identifiers: tool functions and TypedDict classes share one namespace."""

    def __init__(self) -> None:
        self.taken: set[str] = set(dir(builtins)) | set(SANDBOX_NAMES) | set(keyword.kwlist)
        self.classes: dict[int, str] = {}
        self.definitions: list[str] = []

    def function(self, name: str) -> str:
        return python_identifier(name, self.taken)

    def class_name(self, hint: str) -> str:
        base = re.sub(r"[^A-Za-z0-9]", "", hint) or "Shape"
        if base[0].isdigit():
            base = "T" + base
        return python_identifier(base, self.taken)


def _strip(t: Any) -> tuple[Any, bool | None]:
    """``t`` without ``Annotated``/``Required``/``NotRequired``; whether it was marked (not) required."""
    required: bool | None = None
    while True:
        origin = get_origin(t)
        if origin is Annotated:
            t = get_args(t)[0]
        elif origin in _REQUIRED:
            t, required = get_args(t)[0], True
        elif origin in _NOT_REQUIRED:
            t, required = get_args(t)[0], False
        else:
            return t, required


def _type(t: Any, namer: _Namer) -> str:
    t, _ = _strip(t)
    if t is Any:
        return "Any"
    if t is type(None) or t is None:
        return "None"
    if t in (str, int, float, bool):
        return str(t.__name__)
    if is_typeddict(t):
        return _typeddict(t, namer)
    origin, args = get_origin(t), get_args(t)
    if origin is Literal:
        return "Literal[" + ", ".join(repr(a) for a in args) + "]"
    if origin is list:
        return f"list[{_type(args[0], namer)}]" if args else "list[Any]"
    if origin is dict:
        return f"dict[str, {_type(args[1], namer)}]" if len(args) == 2 else "dict[str, Any]"
    if origin in (Union, types.UnionType):
        return " | ".join(_type(a, namer) for a in args)
    return "Any"


def _typeddict(t: Any, namer: _Namer) -> str:
    known = namer.classes.get(id(t))
    if known is not None:
        return known
    name = namer.classes[id(t)] = namer.class_name(getattr(t, "__name__", "Shape"))
    required_keys = set(getattr(t, "__required_keys__", ()))
    fields_ = [(str(k), _field(v, k in required_keys, namer)) for k, v in t.__annotations__.items()]
    namer.definitions.append(_class_source(name, fields_))
    return name


def _field(annotation: Any, required: bool, namer: _Namer) -> str:
    inner, marked = _strip(annotation)
    shown = _type(inner, namer)
    return shown if (marked if marked is not None else required) else f"NotRequired[{shown}]"


def _plain_key(key: str) -> bool:
    return key.isascii() and key.isidentifier() and not keyword.iskeyword(key)


def _class_source(name: str, fields_: Sequence[tuple[str, str]]) -> str:
    if all(_plain_key(k) for k, _ in fields_):
        body = "".join(f"    {k}: {v}\n" for k, v in fields_) or "    pass\n"
        return f"class {name}(TypedDict):\n{body}"
    # A key that is no identifier (``data-type``, ``from``) needs the functional form.
    items = ", ".join(f"{k!r}: {v}" for k, v in fields_)
    return f"{name} = TypedDict({name!r}, {{{items}}})\n"


def _result_type(entry: ToolEntry, namer: _Namer) -> str:
    schema = entry.output_schema
    if not isinstance(schema, Mapping) or not schema.get("properties"):
        return "str"
    compiled = compile_schema(schema, name=entry.name + "Result")
    if not compiled.parameters:
        return "Any"
    fields_ = [(p.name, _field(p.annotation, p.required, namer)) for p in compiled.parameters]
    name = namer.class_name(entry.name.title().replace("_", "") + "Result")
    namer.definitions.append(_class_source(name, fields_))
    return name


def _function(py_name: str, entry: ToolEntry, namer: _Namer) -> str:
    compiled = entry.compiled
    params: list[str] = []
    if compiled.typed:
        for p in compiled.parameters:
            shown = _type(p.annotation, namer)
            params.append(f"{p.py_name}: {shown}" if p.required else f"{p.py_name}: {shown} = ...")
        signature = f"*, {', '.join(params)}" if params else ""
    else:
        signature = "**arguments: Any"
    result = _result_type(entry, namer)
    doc = entry.description
    if compiled.typed:
        described = [f"{p.py_name}: {p.description}" for p in compiled.parameters if p.description]
        if described:
            doc += "\n\nArgs:\n" + "\n".join("    " + " ".join(d.split()) for d in described)
    return f"async def {py_name}({signature}) -> {result}:\n{docstring(doc)}"


def render_stubs(entries: Iterable[ToolEntry], *, search: bool = False) -> Stubs:
    """The stubs of ``entries`` (and, with ``search``, of ``find_tools``/``call_tool``).

    The source is parsed (never run) before it is handed out: a ``SyntaxError`` here would mean a
    server's text escaped its string, and stops code mode rather than letting it through.
    """
    namer = _Namer()
    functions: list[str] = []
    tools: dict[str, StubbedTool] = {}
    for entry in entries:
        py_name = namer.function(entry.name)
        start = len(namer.definitions)
        source = _function(py_name, entry, namer)
        functions.append(source)
        tools[py_name] = StubbedTool(py_name, entry, "\n".join([*namer.definitions[start:], source]))
    parts = [_HEADER, _ERRORS, *(d + "\n" for d in namer.definitions), *(f + "\n" for f in functions)]
    if search:
        parts.append(_SEARCH)
    source = "\n".join(p.rstrip("\n") + "\n" for p in parts)
    checker = _CHECKER_SHIMS + source
    ast.parse(checker)  # proves the escaping held: a hostile description is still just a string
    return Stubs(source=source, checker=checker, tools=tools)


def stub_of(entry: ToolEntry) -> str:
    """One tool's stub on its own (its classes, then its function), as ``find_tools`` shows it."""
    return next(iter(render_stubs([entry]).tools.values())).source
