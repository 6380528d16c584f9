"""Python annotations as readable source text: the signature the bridge generated, as code.

``format_function`` renders a tool's signature the way a person would have written it
(``str | None`` rather than ``typing.Optional[str]``, class names without their module),
followed by the ``TypedDict`` classes it uses. Parameter descriptions, which live in
``Annotated[T, "..."]``, become end-of-line comments.
"""

from __future__ import annotations

import inspect
import keyword
import types
import typing
from collections.abc import Iterator
from typing import Any

from typing_extensions import is_typeddict

__all__ = ["format_annotation", "format_function", "unwrap"]

_WRAPPERS = ("Required", "NotRequired", "ReadOnly")
_LINE_MAX = 96  # fits a panel on a 100-column terminal
_COMMENT_MIN = 24


def unwrap(annotation: Any) -> tuple[Any, str | None]:
    """Strip ``Annotated``/``Required``/``NotRequired``; return the bare type and its description."""
    description: str | None = None
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            meta = [m for m in getattr(annotation, "__metadata__", ()) if isinstance(m, str)]
            description = description or (meta[0] if meta else None)
            annotation = annotation.__origin__
        elif origin is not None and getattr(origin, "_name", None) in _WRAPPERS:
            annotation = typing.get_args(annotation)[0]
        else:
            return annotation, description


def format_annotation(annotation: Any, classes: list[Any] | None = None) -> str:
    """Source text for ``annotation``; TypedDicts met on the way are appended to ``classes``."""
    annotation, _ = unwrap(annotation)
    if annotation is Any:
        return "Any"
    if annotation is type(None) or annotation is None:
        return "None"
    if is_typeddict(annotation):
        if classes is not None and annotation not in classes:
            classes.append(annotation)
        return str(annotation.__name__)
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return f"Literal[{', '.join(repr(a) for a in args)}]"
    if origin in (typing.Union, types.UnionType):
        parts = [format_annotation(a, classes) for a in args]
        # `None` last reads as "optional", the way people write it.
        parts.sort(key=lambda p: p == "None")
        return " | ".join(parts)
    if origin is not None:
        name = getattr(origin, "__name__", None) or str(origin).replace("typing.", "")
        return f"{name}[{', '.join(format_annotation(a, classes) for a in args)}]"
    if isinstance(annotation, type):
        return annotation.__name__
    return str(annotation).replace("typing.", "")


def _comment(description: str | None, code: str) -> str:
    """``code`` plus the description as an end-of-line comment, cut to keep the line short."""
    if not description:
        return code
    text = " ".join(description.split())
    room = max(_COMMENT_MIN, _LINE_MAX - len(code) - 4)
    if len(text) > room:
        text = text[: room - 1] + "…"
    return f"{code}  # {text}"


def _classes(classes: list[Any]) -> Iterator[str]:
    done: list[Any] = []
    while len(done) < len(classes):
        cls = classes[len(done)]
        done.append(cls)
        hints = cls.__annotations__
        required: frozenset[str] = getattr(cls, "__required_keys__", frozenset())
        fields = []
        for key, annotation in hints.items():
            text = format_annotation(annotation, classes)
            wrapped = text if key in required else f"NotRequired[{text}]"
            fields.append((key, wrapped, unwrap(annotation)[1]))
        yield ""
        if all(k.isidentifier() and not keyword.iskeyword(k) for k, _, _ in fields):
            yield f"class {cls.__name__}(TypedDict):"
            if not fields:
                yield "    pass"
            for key, text, description in fields:
                yield _comment(description, f"    {key}: {text}")
        else:
            # Keys such as "data-type" or "from" only fit the functional syntax.
            yield f"{cls.__name__} = TypedDict({cls.__name__!r}, {{"
            for key, text, description in fields:
                yield _comment(description, f"    {key!r}: {text},")
            yield "})"


def format_function(name: str, signature: inspect.Signature, return_type: str = "CallResult") -> str:
    """``async def name(*, ...) -> CallResult: ...`` (a stub) plus the ``TypedDict`` classes it refers to."""
    classes: list[Any] = []
    lines = []
    for param in signature.parameters.values():
        text = format_annotation(param.annotation, classes)
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            lines.append(f"    **{param.name}: {text},")
            continue
        default = "" if param.default is inspect.Parameter.empty else f" = {param.default!r}"
        lines.append(_comment(unwrap(param.annotation)[1], f"    {param.name}: {text}{default},"))
    has_keyword_only = any(p.kind is inspect.Parameter.KEYWORD_ONLY for p in signature.parameters.values())
    head = f"async def {name}("
    if not lines:
        out = [f"{head}) -> {return_type}: ..."]
    else:
        out = [head, *(["    *,"] if has_keyword_only else []), *lines, f") -> {return_type}: ..."]
    out.extend(_classes(classes))
    return "\n".join(out)
