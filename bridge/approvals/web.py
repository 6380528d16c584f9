"""The reviewers' page: pending requests with their arguments, hints and duplicate notes, recent
decisions, and approve/deny forms with a reason. A Starlette app; ``mcp-bridge approvals serve``
runs it with uvicorn on 127.0.0.1.

Security, since every argument was written by a model and every hint by a server:

- **Reviewer tokens.** Each reviewer has a token (``Reviewers``: ``NAME TOKEN`` lines, from a
  file or ``$MCP_BRIDGE_REVIEWERS``); the decision records the name the token maps to. A
  browser signs in once with its token (a form; the token is never echoed, logged or put in a
  URL) and gets a session cookie (HttpOnly, SameSite=Strict); a script may send
  ``Authorization: Bearer TOKEN`` instead. Anything else is answered 401 and decides nothing.
- **Cross-site requests.** Every form carries a CSRF token bound to the session, compared in
  constant time, and every POST must come from the page's own origin (``Origin`` and
  ``Sec-Fetch-Site`` checked when the browser sends them).
- **Foreign text is inert.** Everything a server or model wrote goes through
  ``bridge.sanitize.html_text``: HTML is escaped (a ``<script>`` argument is shown as text), and
  control, bidi and invisible characters are shown as escapes, so the reviewer sees the real
  recipient. A Content-Security-Policy allows only the page's own nonce-tagged script and style.
- **Secrets masked by value.** Before it is escaped, every foreign text is masked with what this
  process knows to be secret (the reviewer tokens, the store URL's password, the open
  sessions' secrets): the agent masked what it knew, but not what only the page knows.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import os
import secrets as pysecrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, get_args
from urllib.parse import urlsplit

from ..errors import ConfigError
from ..sanitize import html_text
from ..secrets import Secrets, mask_known
from .requests import ApprovalRequest, Status, iso
from .store import ApprovalError, ApprovalStore, UnknownRequest

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

__all__ = ["REVIEWERS_ENV", "Reviewers", "create_app"]

REVIEWERS_ENV = "MCP_BRIDGE_REVIEWERS"
"""Reviewer tokens when no file is given: ``NAME TOKEN`` pairs, one per line (or ``,``-separated)."""

_COOKIE = "mcp_bridge_review"
_MIN_TOKEN = 16
_RECENT = 20
_REFRESH_SECONDS = 5
_PENDING: tuple[Status] = ("pending",)
_ENDED: tuple[Status, ...] = tuple(s for s in get_args(Status) if s != "pending")
_SHOWN = 200
"""Pending requests on one page: the oldest (they expire first); the rest once these are decided."""


@dataclass(frozen=True)
class Reviewers:
    """Token -> reviewer name. Tokens are secrets: never shown, compared in constant time."""

    by_token: Mapping[str, str]

    @classmethod
    def parse(cls, text: str, source: str) -> Reviewers:
        """``NAME TOKEN`` (or ``NAME:TOKEN``) per line or comma-separated item; ``#`` comments.

        Raises:
            ConfigError: a malformed line, a token shorter than 16 characters, or no reviewer.
        """
        found: dict[str, str] = {}
        items = [part.strip() for line in text.splitlines() for part in line.split("#", 1)[0].split(",")]
        for number, item in enumerate((i for i in items if i), start=1):
            name, _, token = item.replace(":", " ", 1).partition(" ")
            token = token.strip()
            if not name or not token:
                raise ConfigError(f"{source}: entry {number} is not 'NAME TOKEN'")
            if len(token) < _MIN_TOKEN:
                raise ConfigError(f"{source}: the token of reviewer {name!r} is shorter than {_MIN_TOKEN} characters; "
                                  "make one with: python -c 'import secrets; print(secrets.token_urlsafe())'")
            if found.get(token, name) != name:
                # One token, two names: the decision would record whichever came last, whoever signed in.
                raise ConfigError(f"{source}: reviewers {found[token]!r} and {name!r} share a token; "
                                  "give each reviewer a token of their own")
            found[token] = name
        if not found:
            raise ConfigError(f"{source}: no reviewer tokens ('NAME TOKEN' per line)")
        return cls(found)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> Reviewers:
        """From ``path``, else from ``$MCP_BRIDGE_REVIEWERS``.

        Raises:
            ConfigError: neither given, an unreadable file, or malformed content.
        """
        if path is not None:
            try:
                return cls.parse(Path(path).read_text(encoding="utf-8"), f"reviewer tokens {os.fspath(path)}")
            except OSError as e:
                raise ConfigError(f"cannot read reviewer tokens {os.fspath(path)}: {e.strerror}") from None
        text = os.environ.get(REVIEWERS_ENV, "")
        if not text.strip():
            raise ConfigError(f"the approval page needs reviewer tokens: --tokens FILE ('NAME TOKEN' per line) "
                              f"or ${REVIEWERS_ENV}")
        return cls.parse(text, f"${REVIEWERS_ENV}")

    def who(self, token: str) -> str | None:
        """The reviewer ``token`` belongs to, or None."""
        name = None
        for known, reviewer in self.by_token.items():
            # Every token compared, so the time taken says nothing about which one nearly matched.
            if hmac.compare_digest(known.encode(), token.encode()):
                name = reviewer
        return name

    def values(self) -> list[str]:
        """The tokens, for masking."""
        return list(self.by_token)


@dataclass
class _Session:
    reviewer: str
    csrf: str
    created: float


Shown = Callable[[str], str]
"""Foreign text made fit for the page: masked by value, then HTML-escaped (``create_app``)."""


def create_app(store: ApprovalStore, reviewers: Reviewers, *, session_hours: float = 12.0,
               secrets: Iterable[str] = ()) -> Starlette:
    """The reviewers' page on ``store`` (see the module docstring); ``secrets``: further values
    masked wherever they occur (the store URL's password)."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse, RedirectResponse
    from starlette.routing import Route

    sessions: dict[str, _Session] = {}
    mask = Secrets([*reviewers.values(), *secrets], min_length=1)

    def shown(text: str) -> str:
        return html_text(mask(mask_known(text)))

    def session_of(request: Request) -> _Session | None:
        sid = request.cookies.get(_COOKIE, "")
        found = sessions.get(sid) if sid else None
        if found is not None and time.time() - found.created > session_hours * 3600:
            sessions.pop(sid, None)
            return None
        return found

    def bearer(request: Request) -> str | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return reviewers.who(token.strip()) if scheme.lower() == "bearer" and token.strip() else None

    def page(body: str, status: int = 200, nonce: str = "") -> Response:
        nonce = nonce or pysecrets.token_urlsafe(16)
        html = _PAGE.format(nonce=nonce, body=body)
        return HTMLResponse(html, status_code=status, headers=_headers(nonce))

    def sign_in(status: int, note: str = "") -> Response:
        message = f'<p class="error">{shown(note)}</p>' if note else ""
        return page(_SIGN_IN.format(message=message), status)

    async def index(request: Request) -> Response:
        session = session_of(request)
        reviewer = session.reviewer if session else bearer(request)
        if reviewer is None:
            return sign_in(401)
        csrf = session.csrf if session else ""
        pending = await store.list(statuses=_PENDING, limit=_SHOWN + 1, oldest_first=True)
        more = (f'<p id="more">More than {_SHOWN} requests wait: the {_SHOWN} oldest are shown (they expire first); '
                'the rest appear as these are decided.</p>' if len(pending) > _SHOWN else "")
        pending = pending[:_SHOWN]
        recent = await store.list(statuses=_ENDED, limit=_RECENT)
        known = {r.id: r for r in [*pending, *recent]}
        for r in pending:
            if r.duplicate_of and r.duplicate_of not in known:
                with contextlib.suppress(UnknownRequest):
                    known[r.duplicate_of] = await store.get(r.duplicate_of)
        cards = "".join(_card(r, known, csrf, shown) for r in pending) or '<p id="none">Nothing waits.</p>'
        rows = "".join(_decided_row(r, shown) for r in recent)
        body = (f'<header><h1>Approvals</h1><span id="who">signed in as {shown(reviewer)}</span></header>'
                f'<section id="pending"><h2>Pending ({len(pending)}{"+" if more else ""})</h2>{more}{cards}</section>'
                f'<section id="recent"><h2>Recent decisions</h2><table><tr><th>#</th><th>status</th>'
                f'<th>agent</th><th>tool</th><th>reviewer</th><th>reason</th><th>time</th></tr>{rows}</table>'
                '</section>')
        return page(body)

    async def login(request: Request) -> Response:
        if not _same_origin(request):
            return page("<p>Refused: a cross-site request.</p>", 403)
        form = await request.form()
        reviewer = reviewers.who(str(form.get("token", "")))
        if reviewer is None:
            return sign_in(401, "That token is not a reviewer's.")
        sid = pysecrets.token_urlsafe(32)
        sessions[sid] = _Session(reviewer, pysecrets.token_urlsafe(32), time.time())
        answer = RedirectResponse("/", status_code=303)
        answer.set_cookie(_COOKIE, sid, httponly=True, samesite="strict", secure=request.url.scheme == "https",
                          path="/")
        return answer

    async def decide(request: Request) -> Response:
        session = session_of(request)
        reviewer = session.reviewer if session else bearer(request)
        if reviewer is None:
            return page("<p>Sign in first: no reviewer token.</p>", 401)
        if not _same_origin(request):
            return page("<p>Refused: a cross-site request.</p>", 403)
        form = await request.form()
        if session is not None and not hmac.compare_digest(str(form.get("csrf", "")).encode(), session.csrf.encode()):
            return page("<p>Refused: the form's token does not match this session (reload the page).</p>", 403)
        choice = str(form.get("decision", ""))
        if choice not in ("approve", "deny"):
            return page("<p>Say approve or deny.</p>", 400)
        try:
            request_id = int(request.path_params["request_id"])
            await store.decide(request_id, choice == "approve", reviewer, str(form.get("reason", "")).strip())
        except (ValueError, ApprovalError) as e:
            status = 404 if isinstance(e, UnknownRequest | ValueError) else 409
            return page(f'<p class="error">{shown(str(e))}</p><p><a href="/">back</a></p>', status)
        return RedirectResponse("/", status_code=303)

    async def logout(request: Request) -> Response:
        if not _same_origin(request):
            return page("<p>Refused: a cross-site request.</p>", 403)
        sessions.pop(request.cookies.get(_COOKIE, ""), None)
        answer = RedirectResponse("/", status_code=303)
        answer.delete_cookie(_COOKIE, path="/")
        return answer

    return Starlette(routes=[
        Route("/", index, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/requests/{request_id}/decide", decide, methods=["POST"]),
    ])


def _same_origin(request: Request) -> bool:
    """Whether a POST comes from this page: a browser names the site of the form that sent it."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        # Browsers send Origin on every POST; only scripts with a bearer token omit it.
        return site is None and bool(request.headers.get("authorization"))
    parts = urlsplit(origin)
    return f"{parts.scheme}://{parts.netloc}" == f"{request.url.scheme}://{request.url.netloc}"


def _headers(nonce: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; "
                                    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        # Not no-referrer: with it a browser sends "Origin: null", and the page could not tell its own forms.
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    }


def _hints(request: ApprovalRequest) -> str:
    hints = request.hints
    names = [("readOnlyHint", "read-only"), ("destructiveHint", "destructive"), ("idempotentHint", "idempotent"),
             ("openWorldHint", "open-world")]
    shown = [f"{label}: {str(hints[key]).lower()}" for key, label in names if key in hints]
    return ", ".join(shown) or "none (counts as destructive)"


def _duplicate(request: ApprovalRequest, known: Mapping[int, ApprovalRequest], shown: Shown) -> str:
    if not request.duplicate_of:
        return ""
    other = known.get(request.duplicate_of)
    if other is None:
        return f'<p class="dup">possible duplicate of #{request.duplicate_of}</p>'
    who = shown(other.agent or "the server")
    state = (f"approved by {shown(other.reviewer or '?')}" if other.status == "approved"
             else shown(other.shown_status))
    return (f'<p class="dup">possible duplicate of #{other.id}: proposed by {who} at {iso(other.created)}, '
            f'{state}</p>')


def _card(request: ApprovalRequest, known: Mapping[int, ApprovalRequest], csrf: str, shown: Shown) -> str:
    args = json.dumps(dict(request.arguments), indent=2, ensure_ascii=False, sort_keys=True, default=str)
    alias = f" (called as {shown(request.alias)})" if request.alias != request.tool else ""
    token = f'<input type="hidden" name="csrf" value="{html_text(csrf)}">'
    return (f'<article class="request" id="request-{request.id}"><h3>#{request.id} '
            f'<span class="tool">{shown(request.server)} / {shown(request.tool)}</span>{alias}</h3>'
            f'<p>agent <b class="agent">{shown(request.agent or "(the server itself)")}</b>, '
            f'asked at {iso(request.created)}, expires {iso(request.expires)}</p>'
            f'<p>hints: {shown(_hints(request))}; why: {shown(request.why)}</p>'
            f'{_duplicate(request, known, shown)}'
            f'<p>arguments (as the model wrote them, secrets masked):</p>'
            f'<pre class="arguments">{shown(args)}</pre>'
            f'<form method="post" action="/requests/{request.id}/decide">{token}'
            f'<input name="reason" placeholder="reason (shown to the model on deny)" maxlength="500">'
            f'<button name="decision" value="approve">Approve</button>'
            f'<button name="decision" value="deny">Deny</button></form></article>')


def _decided_row(request: ApprovalRequest, shown: Shown) -> str:
    cells = [f"#{request.id}", request.shown_status, request.agent or "", f"{request.server}/{request.tool}",
             request.reviewer or "", request.reason or "", iso(request.decided)]
    return "<tr>" + "".join(f"<td>{shown(c)}</td>" for c in cells) + "</tr>"


_SIGN_IN = """<h1>Approvals</h1>{message}
<form method="post" action="/login"><label>Reviewer token <input type="password" name="token"
autocomplete="current-password"></label> <button>Sign in</button></form>"""

# The refresh reloads the page every few seconds unless the reviewer is typing a reason.
_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>mcp-bridge approvals</title>
<style nonce="{nonce}">
body {{ font-family: sans-serif; margin: 1.5em; max-width: 60em; }}
pre {{ background: #f4f4f4; padding: .5em; white-space: pre-wrap; overflow-wrap: anywhere; }}
.dup {{ color: #a05a00; }} .error {{ color: #b00020; }} td {{ padding: 0 .5em; vertical-align: top; }}
article {{ border: 1px solid #ccc; padding: .5em 1em; margin: 1em 0; }}
</style></head><body>{body}
<script nonce="{nonce}">
setInterval(function () {{
  var a = document.activeElement;
  if (!a || a.tagName !== "INPUT") {{ location.reload(); }}
}}, """ + str(_REFRESH_SECONDS * 1000) + """);
</script></body></html>"""
