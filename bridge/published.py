"""What a server publishes besides tools: resources, resource templates and prompts.

``Published`` is one session's view of them: listed (every page, bounded like the tool listing)
once per change and kept until a notification says otherwise (resources or prompts
list_changed, a resource updated, a reconnect), read and rendered bounded.

Everything here comes from the server and is hostile:

* a URI is read only if the server listed it or one of its templates matches it, and never when
  a path segment is ``..`` (however it is encoded): anything else is refused before a request is
  made, so a model cannot use the bridge to probe what the server did not offer;
* what is read is bounded: text past ``max_chars`` is cut with a note saying so, binary contents
  are summarised (type and size), never dumped;
* a prompt is fetched only by a listed name, with its required arguments all given, each a
  string, and no argument it does not declare: a missing one is refused naming it.

Nothing here prints: callers that show any of it to a person go through ``bridge.sanitize``
(the CLI's ``Output`` does).
"""

from __future__ import annotations

import re
import sys
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar
from urllib.parse import unquote

import mcp_types as types
from mcp import Client
from mcp_types import INTERNAL_ERROR, METHOD_NOT_FOUND

from .errors import InvalidArguments, ProtocolError
from .options import DEFAULT_MAX_CHARS
from .results import block_text, render
from .secrets import clip, dataclass_repr, head
from .session import Session

__all__ = ["PromptLine", "Published", "RenderedPrompt", "ResourceRead", "template_pattern", "unsafe_uri"]

# Listings are bounded like tools/list: a paginator that never ends must not hang anything.
_MAX_PAGES = 1_000

T = TypeVar("T")


def unsafe_uri(uri: str) -> str | None:
    """Why ``uri`` must never be read whoever listed it (a ``..`` segment, a control
    character), or ``None``. Percent-encoding is undone twice, so ``%2e%2e`` and
    ``%252e%252e`` count too."""
    if not uri or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in uri):
        return "the URI is empty or holds control characters"
    decoded = unquote(unquote(uri))
    path = re.split(r"[?#]", decoded, maxsplit=1)[0]
    if any(segment == ".." for segment in re.split(r"[/\\]", path)):
        return "the URI climbs out of its directory ('..')"
    return None


_EXPRESSION = re.compile(r"\{([+#./;?&]?)([^}]*)\}")
# What one template expression may expand to, by operator (RFC 6570, level 4 without prefixes).
_EXPANSIONS = {"": r"[^/?#]*", "+": r"[^?#]*", "#": r"(?:#.*)?", ".": r"(?:\.[^/?#]*)*", "/": r"(?:/[^/?#]*)*",
               ";": r"(?:;[^/?#]*)*", "?": r"(?:\?[^#]*)?", "&": r"(?:&[^#]*)?"}


def template_pattern(template: str) -> re.Pattern[str]:
    """A regular expression matching the URIs an RFC 6570 URI template expands to."""
    out, at = [], 0
    for m in _EXPRESSION.finditer(template):
        out.append(re.escape(template[at:m.start()]))
        out.append(_EXPANSIONS[m.group(1)])
        at = m.end()
    out.append(re.escape(template[at:]))
    return re.compile("".join(out), re.DOTALL)


@dataclass(frozen=True)
class ResourceRead:
    """What ``resources/read`` returned for one URI.

    Attributes:
        uri: the URI asked for.
        contents: the server's contents (text and binary), as sent.
        text: what a model or a person is shown: each text content after a ``[resource <uri>]``
            line, binary ones as ``[resource <uri>: type, size]``, cut past the bound with a note.
    """

    server: str
    uri: str
    contents: tuple[types.TextResourceContents | types.BlobResourceContents, ...]
    text: str

    __repr__ = dataclass_repr  # a resource (a config file, say) may hold a secret a session knows

    def blocks(self) -> tuple[types.EmbeddedResource, ...]:
        """The contents as embedded-resource content blocks (what a tool result carries)."""
        return tuple(types.EmbeddedResource(type="resource", resource=c) for c in self.contents)


@dataclass(frozen=True)
class PromptLine:
    """One message of a rendered prompt: who says it (``user``, ``assistant``) and its text."""

    role: str
    text: str

    __repr__ = dataclass_repr


@dataclass(frozen=True)
class RenderedPrompt:
    """A server prompt with its arguments filled in, as framework-neutral messages.

    Each adapter turns ``lines`` into its own message objects (``prompt_messages``), or
    ``system_text()`` into one system message. Text contents are kept as sent; images, audio
    and binary resources are placeholders naming their type and size; the whole is bounded.
    """

    server: str
    name: str
    description: str
    lines: tuple[PromptLine, ...]

    __repr__ = dataclass_repr

    def system_text(self) -> str:
        """The prompt as the text of one system message: a single message's text as is; several
        each under a ``[role]`` line."""
        if len(self.lines) == 1:
            return self.lines[0].text
        return "\n\n".join(f"[{line.role}]\n{line.text}" for line in self.lines)


def _bounded(contents: Sequence[types.TextResourceContents | types.BlobResourceContents], max_chars: int) -> str:
    text = render([types.EmbeddedResource(type="resource", resource=c) for c in contents], max_chars=sys.maxsize)
    if len(text) <= max_chars:
        return text
    # Never through a known secret (see ``results.render``).
    return head(text, max_chars) + f"\n[truncated: showing {max_chars:,} of {len(text):,} characters of the resource]"


class Published:
    """The resources, templates and prompts of one session. Get it with ``Published.of(session)``.

    Listings are cached until the server announces a change (a legacy notification or a
    2026-07-28 ``subscriptions/listen`` event, both reaching ``Session.notification_listeners``)
    or the session reconnects or re-lists its tools (``Session.tools_version``).
    """

    _of: ClassVar[weakref.WeakKeyDictionary[Session, Published]] = weakref.WeakKeyDictionary()

    def __init__(self, session: Session) -> None:
        self.session = session
        self.version = 0
        """Bumped by every resources/prompts change the server announces."""
        self._cache: dict[str, tuple[tuple[int, int], tuple[Any, ...]]] = {}
        self._patterns: dict[str, re.Pattern[str]] = {}
        session.notification_listeners.append(self._notified)

    @classmethod
    def of(cls, session: Session) -> Published:
        """The one ``Published`` of ``session`` (made on first use)."""
        found = cls._of.get(session)
        if found is None:
            found = cls._of[session] = cls(session)
        return found

    def _notified(self, message: object) -> None:
        if isinstance(message, types.ResourceListChangedNotification | types.ResourceUpdatedNotification):
            self._cache.pop("resources", None)
            self._cache.pop("templates", None)
        elif isinstance(message, types.PromptListChangedNotification):
            self._cache.pop("prompts", None)
        else:
            return
        self.version += 1

    def offers(self, capability: str) -> bool:
        """Whether the server declared ``capability`` (``resources``, ``prompts``) in its handshake."""
        return self.session.info.capabilities.get(capability) is not None

    @property
    def _key(self) -> tuple[int, int]:
        return self.version, self.session.tools_version

    # -- listings --------------------------------------------------------------------

    async def resources(self, *, fresh: bool = False) -> tuple[types.Resource, ...]:
        """Every resource the server lists (all pages); empty when it offers none."""
        return await self._listing("resources", "resources/list", fresh,
                                   lambda c, cur: c.list_resources(cursor=cur, cache_mode="bypass"),
                                   lambda page: page.resources)

    async def resource_templates(self, *, fresh: bool = False) -> tuple[types.ResourceTemplate, ...]:
        """Every resource template the server lists (all pages); empty when it offers none."""
        return await self._listing("templates", "resources/templates/list", fresh,
                                   lambda c, cur: c.list_resource_templates(cursor=cur, cache_mode="bypass"),
                                   lambda page: page.resource_templates)

    async def prompts(self, *, fresh: bool = False) -> tuple[types.Prompt, ...]:
        """Every prompt the server lists (all pages); empty when it offers none."""
        return await self._listing("prompts", "prompts/list", fresh,
                                   lambda c, cur: c.list_prompts(cursor=cur, cache_mode="bypass"),
                                   lambda page: page.prompts)

    async def _listing(self, key: str, method: str, fresh: bool, fetch: Callable[[Client, str | None], Awaitable[Any]],
                       items: Callable[[Any], Sequence[T]]) -> tuple[T, ...]:
        capability = "prompts" if key == "prompts" else "resources"
        if not self.offers(capability):
            return ()
        cached = self._cache.get(key)
        if cached is not None and cached[0] == self._key and not fresh:
            return cached[1]
        version = self._key
        server, limit = self.session.name, self.session.options.max_listing_tools

        async def op(client: Client) -> list[T]:
            found: list[T] = []
            cursors: set[str] = set()
            cursor: str | None = None
            for _ in range(_MAX_PAGES):
                page = await fetch(client, cursor)
                found.extend(items(page))
                if len(found) > limit:
                    raise ProtocolError(f"{method} offers more than {limit:,} entries; raise "
                                        "Options.max_listing_tools if the server really has that many",
                                        code=INTERNAL_ERROR, server=server)
                cursor = page.next_cursor
                if cursor is None:
                    return found
                if cursor in cursors:
                    raise ProtocolError(f"{method} pages run in a circle (a cursor came back after "
                                        f"{len(found):,} entries)", code=INTERNAL_ERROR, server=server)
                cursors.add(cursor)
            raise ProtocolError(f"{method} did not end after {_MAX_PAGES:,} pages", code=INTERNAL_ERROR,
                                server=server)

        try:
            listed = tuple(await self.session.request(op, timeout=self.session.timeout, retry=True))
        except ProtocolError as e:
            if e.code != METHOD_NOT_FOUND:
                raise
            listed = ()  # a server with resources but no templates often answers templates/list so
        self._cache[key] = (version, listed)
        return listed

    # -- resources -------------------------------------------------------------------

    async def scope_problem(self, uri: str) -> str | None:
        """Why ``uri`` may not be read (see ``unsafe_uri``; neither listed nor matching a listed
        template, after one fresh listing), or ``None``. Sends no ``resources/read``."""
        unsafe = unsafe_uri(uri)
        if unsafe is not None:
            return unsafe
        for fresh in (False, True):  # a server may add a resource without announcing it
            if any(r.uri == uri for r in await self.resources(fresh=fresh)):
                return None
            if any(self._pattern(t.uri_template).fullmatch(uri) for t in await self.resource_templates(fresh=fresh)):
                return None
        return "the server neither lists this URI nor offers a template matching it"

    def _pattern(self, template: str) -> re.Pattern[str]:
        found = self._patterns.get(template)
        if found is None:
            found = self._patterns[template] = template_pattern(template)
        return found

    async def read(self, uri: str, *, max_chars: int = DEFAULT_MAX_CHARS, tool: str | None = None) -> ResourceRead:
        """Read ``uri``, bounded (see ``ResourceRead.text``).

        Raises:
            InvalidArguments: the URI is unsafe, or outside what the server listed or templated
                (nothing was sent); names the URI.
            ProtocolError, CallTimeout, ConnectionLost: the read failed.
        """
        problem = await self.scope_problem(uri)
        if problem is not None:
            raise InvalidArguments(f"refused to read {clip(uri, 200)!r}: {problem}", argument="uri", rule="listed",
                                   server=self.session.name, tool=tool)

        async def op(client: Client) -> types.ReadResourceResult:
            return await client.read_resource(uri, cache_mode="bypass")

        result: types.ReadResourceResult = await self.session.request(
            op, tool=tool, timeout=self.session.call_timeout, retry=True)
        contents = tuple(result.contents)
        return ResourceRead(self.session.name, uri, contents, _bounded(contents, max_chars))

    # -- prompts ---------------------------------------------------------------------

    async def get_prompt(self, name: str, arguments: Mapping[str, Any] | None = None, *,
                         max_chars: int = DEFAULT_MAX_CHARS) -> RenderedPrompt:
        """The listed prompt ``name`` with ``arguments`` filled in, bounded.

        Raises:
            InvalidArguments: no listed prompt of that name, a required argument missing, an
                argument it does not declare, or a value that is not a string; names it. Nothing
                is sent then.
            ProtocolError, CallTimeout, ConnectionLost: the request failed.
        """
        server = self.session.name
        given = dict(arguments or {})
        prompts = {p.name: p for p in await self.prompts()}
        prompt = prompts.get(name) or {p.name: p for p in await self.prompts(fresh=True)}.get(name)
        if prompt is None:
            known = ", ".join(sorted(prompts)[:20]) or "none"
            raise InvalidArguments(f"no prompt named {clip(name, 100)!r} (listed: {known})", argument="name",
                                   rule="listed", server=server)
        declared = {a.name: a for a in prompt.arguments or ()}
        missing = [a for a, d in declared.items() if d.required and a not in given]
        if missing:
            raise InvalidArguments(f"prompt {name!r} needs the argument {', '.join(map(repr, missing))}",
                                   argument=missing[0], rule="required", server=server)
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise InvalidArguments(f"prompt {name!r} takes no argument {', '.join(map(repr, unknown))} "
                                   f"(it takes: {', '.join(declared) or 'none'})", argument=unknown[0],
                                   rule="additionalProperties", server=server)
        not_text = [k for k, v in given.items() if not isinstance(v, str)]
        if not_text:
            raise InvalidArguments(f"prompt arguments are strings: {', '.join(map(repr, not_text))} is not",
                                   argument=not_text[0], rule="type", server=server)

        async def op(client: Client) -> types.GetPromptResult:
            return await client.get_prompt(name, given)

        result: types.GetPromptResult = await self.session.request(op, timeout=self.session.call_timeout)
        lines, used = [], 0
        for message in result.messages:
            text = block_text(message.content)
            if used + len(text) > max_chars:
                lines.append(PromptLine(str(message.role), head(text, max_chars - used) + "\n[truncated: the prompt "
                                        f"exceeds {max_chars:,} characters]"))
                break
            used += len(text)
            lines.append(PromptLine(str(message.role), text))
        return RenderedPrompt(server, name, result.description or prompt.description or "", tuple(lines))
