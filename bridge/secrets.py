"""Every rule for keeping secrets out of sight, in one place.

Two kinds of secret are masked, and both by the rules here:

* **Known values**: what a target was given to authenticate with or was configured with
  (every stdio ``env`` value, credential headers and their bearer tokens, a URL's password,
  secret query parameters, every value a config's ``${VAR}`` expanded to), save the values of
  the system's and runtimes' plain settings (``PATH``, ``PYTHONPATH``, ``HOME``, ``LANG``...),
  which are paths and locales seen all over ordinary output. ``Secrets`` holds
  them and masks them, wherever they occur, by ``***``. Open sessions register theirs in one
  process-wide set, ``known_secrets``, which every sink consults: log records (``log_mask``),
  error messages (``bridge.errors``), audit records, CLI output, the stderr quoted from a dying
  server, approval prompts and reprs. Each value is masked in every spelling servers and
  libraries commonly produce: raw; JSON-escaped (with and without ``\\u`` escapes, with and
  without ``\\/``); percent-encoded as by ``quote(v, safe="")``, ``quote(v)`` (which keeps ``/``)
  and ``quote_plus(v)``, in upper- and lower-case hex.
* **Secret-looking data**: tool arguments are the agent's, not ours, so values are unknown;
  ``mask_data`` masks entries whose *key* names a secret (password, token, api_key, ...) and
  tokens whose *shape* is a credential (``Bearer ...``, ``sk-...``). The shapes are a list a
  deployment can extend with ``add_key_shapes`` (``bridge.multimail`` adds MultiMail's).

Masking never destroys evidence. Only the secret itself is replaced, never the text around it
(``sk-00000000/../../.bashrc`` keeps its ``/../../.bashrc``), and a value masked by its key's
name or its shape (not a known value) is replaced by an *evidence mark*,
``***[sk-…, 40 chars, hmac:ab12cd34]``: the credential's non-secret prefix where its shape has
one, its length, and the first 8 hex digits of an HMAC-SHA256 of the value. The HMAC key is
``$MCP_BRIDGE_EVIDENCE_KEY`` when set (so marks written by several processes, or on several
days, can be compared: equal values give equal marks), else random per process; whoever holds
the key can check whether a mark stands for a given value, nobody else can. Known values are
replaced by ``***`` outright.

Masking comes before any cut: ``clip`` masks, then shortens, so a secret straddling the cut can
never leave a readable part behind.

Values shorter than a few characters are never treated as secrets: ``1`` or ``true`` occur
everywhere, and masking them would garble ordinary text.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit, urlunsplit

__all__ = [
    "EVIDENCE_KEY_ENV",
    "MASK",
    "Secrets",
    "add_key_shapes",
    "clip",
    "dataclass_repr",
    "env_secrets",
    "evidence",
    "head",
    "header_secrets",
    "is_secret_header",
    "is_secret_name",
    "known_secrets",
    "log_mask",
    "mask_data",
    "mask_known",
    "mask_repr",
    "mask_shapes",
    "mask_text",
    "mask_url",
    "set_evidence_key",
    "url_secrets",
]

MASK = "***"

EVIDENCE_KEY_ENV = "MCP_BRIDGE_EVIDENCE_KEY"
"""The environment variable holding the HMAC key of evidence marks (default: a random key per process)."""

_MIN_ENV_SECRET = 6
_MIN_HEADER_SECRET = 4

_SECRET_NAME = re.compile(
    r"pass(word|wd|phrase)|^pass$|secret|token|api[-_]?key|apikey|authorization|credential|private[-_]?key|cookie"
    r"|session[-_]?id|approval[-_]?code|otp$",
    re.IGNORECASE,
)
# Header names carry credentials under many vendors' spellings (Ocp-Apim-Subscription-Key,
# X-Auth-Key, X-Goog-Api-Key, X-Vault-Token): a header is judged more strictly than an argument.
_SECRET_HEADER = re.compile(r"(?:key|token)$|auth", re.IGNORECASE)
_AUTH_SCHEME = re.compile(r"^(?:bearer|basic|token|digest)\s+(\S+)$", re.IGNORECASE)

# A leading ``^`` in a shape means "where a token starts": at the start of the text or after a
# character that cannot be part of a token, so ``task-12345678`` never reads as ``sk-...``.
_TOKEN_START = r"(?<![A-Za-z0-9_-])"
# The part of a match to mask, when not all of it is secret (the scheme of ``Bearer x`` is not).
_SECRET_GROUP = "secret"

_key_shapes: list[str] = [
    r"(?m)^[ \t]*(?:bearer|basic)[ \t]+(?P<secret>\S+)",
    r"^(?:sk|ghp|gho|ghs|github_pat|xox[abprs])[-_][A-Za-z0-9_-]{8,}",
    r"^AKIA[0-9A-Z]{16}(?![0-9A-Z])",
]


def _compile_shape(pattern: str) -> re.Pattern[str]:
    source = _TOKEN_START + pattern[1:] if pattern.startswith("^") else pattern
    return re.compile(source, re.IGNORECASE)


_shapes: list[re.Pattern[str]] = [_compile_shape(p) for p in _key_shapes]


def add_key_shapes(*patterns: str) -> None:
    """Treat tokens matching these regexes as credentials wherever ``mask_data`` looks.

    A leading ``^`` anchors a pattern at the start of a token (not only of the whole value);
    a group named ``secret`` marks the part to mask when the rest is not secret (a scheme).

    Raises:
        re.error: a pattern does not compile.
    """
    for pattern in patterns:
        compiled = _compile_shape(pattern)
        if pattern not in _key_shapes:
            _key_shapes.append(pattern)
            _shapes.append(compiled)


def is_secret_name(name: str) -> bool:
    """Whether a query parameter or argument with this name holds a credential."""
    return bool(_SECRET_NAME.search(name))


def is_secret_header(name: str) -> bool:
    """Whether an HTTP header with this name holds a credential: a secret name, or one ending in
    ``key``/``token`` or containing ``auth`` (``Ocp-Apim-Subscription-Key``, ``X-Auth-Key``)."""
    return is_secret_name(name) or bool(_SECRET_HEADER.search(name.strip()))


def header_secrets(name: str, value: str) -> list[str]:
    """The parts of a header value that must never be shown (``Bearer x`` hides ``x`` too)."""
    if not is_secret_header(name) or len(value) < _MIN_HEADER_SECRET:
        return []
    found = [value]
    scheme = _AUTH_SCHEME.match(value.strip())
    if scheme and len(scheme.group(1)) >= _MIN_HEADER_SECRET:
        found.append(scheme.group(1))
    return found


# Variables of the operating system and of language runtimes that locate things or set a locale
# and never carry a credential. Their values are paths and settings that occur all over a
# server's output ("/srv/app" from PYTHONPATH in every file listing): masking them would hide
# evidence from a reviewer and nothing secret.
_PLAIN_ENV = frozenset("""
PATH PYTHONPATH NODE_PATH GOPATH HOME USER LOGNAME SHELL PWD TMPDIR TEMP TMP LANG LANGUAGE TZ TERM
VIRTUAL_ENV CONDA_PREFIX NODE_ENV PYTHONUNBUFFERED PYTHONIOENCODING PYTHONDONTWRITEBYTECODE PYTHONUTF8
""".split())  # noqa: SIM905 (a word list reads best as text)


def env_secrets(value: str, name: str | None = None) -> list[str]:
    """An environment (or ``${VAR}``-expanded) value is a secret unless it is too short to be one,
    or ``name``, its variable, is a plain setting of the system or a runtime (``PATH``,
    ``PYTHONPATH``, ``LANG``, ``LC_*``...). The same value under any other name is a secret still."""
    if name is not None and (name.upper() in _PLAIN_ENV or name.upper().startswith("LC_")):
        return []
    return [value] if len(value) >= _MIN_ENV_SECRET else []


def url_secrets(url: str) -> list[str]:
    """A URL's password and the values of secret-named query parameters (``api_key=``, ``password=``…),
    as written and percent-decoded."""
    parts = urlsplit(url)
    found = [parts.password] if parts.password else []
    found += [v for k, v in parse_qsl(parts.query) if is_secret_name(k) and len(v) >= _MIN_HEADER_SECRET]
    return sorted({s for v in found if v for s in (v, unquote(v))}, key=len, reverse=True)


def mask_url(url: str, password: str = MASK, secret: str | Callable[[str], str] | None = None) -> str:
    """``url`` with its userinfo password and secret query values replaced.

    ``secret`` is the replacement for query values (default ``MASK``): a string, where ``"{name}"``
    becomes an environment-variable name made from the parameter's (how a config dump writes
    ``${MCP_API_KEY}`` in place of the value), or a function of the parameter's name.
    """
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}:{password}@{host}"

    def masked(pair: str) -> str:
        key, eq, _ = pair.partition("=")
        if not (eq and is_secret_name(key)):
            return pair
        if callable(secret):
            return f"{key}={secret(key)}"
        return f"{key}={(secret or MASK).replace('{name}', env_name(key))}"

    query = "&".join(masked(pair) for pair in parts.query.split("&")) if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def env_name(name: str) -> str:
    """The environment variable a dumped config reads a secret header or parameter from."""
    return "MCP_" + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def _lower_hex(encoded: str) -> str:
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), encoded)


def _spellings(value: str) -> set[str]:
    """How a value is spelt where servers and libraries quote it: raw, inside JSON, inside a URL."""
    escaped = json.dumps(value)[1:-1]
    raw_json = json.dumps(value, ensure_ascii=False)[1:-1]
    found = {value, escaped, raw_json, escaped.replace("/", "\\/"), raw_json.replace("/", "\\/")}
    for encoded in (quote(value, safe=""), quote(value), quote_plus(value)):
        found |= {encoded, _lower_hex(encoded)}
    return found


def mask_text(text: str, values: Iterable[str]) -> str:
    """``text`` with every secret value (each spelling of it) replaced by ``***``."""
    return Secrets(values)(text)


class Secrets:
    """A set of known secret values, masked in any text handed to it.

    Counted, so that two sessions sharing a value can each register and release it.

    Args:
        values: the secrets to start with.
        min_length: shorter values are ignored (they occur in ordinary text); 1 for callers whose
            values are already vetted (``env_secrets``, ``header_secrets``).
    """

    def __init__(self, values: Iterable[str] = (), *, min_length: int = _MIN_ENV_SECRET) -> None:
        self._min = max(1, min_length)
        self._counts: Counter[str] = Counter()
        self._pattern: re.Pattern[str] | None = None
        self._whole: frozenset[str] = frozenset()
        self.longest = 0
        """The length of the longest spelling: how far a secret can reach across a cut."""
        self.add(values)

    def add(self, values: Iterable[str]) -> None:
        """Register values (shorter than ``min_length`` ones are ignored)."""
        self._counts.update(s for v in set(values) if len(v) >= self._min for s in _spellings(v))
        self._compile()

    def remove(self, values: Iterable[str]) -> None:
        """Release values registered with ``add``."""
        self._counts.subtract(s for v in set(values) if len(v) >= self._min for s in _spellings(v))
        self._counts = +self._counts
        self._compile()

    def _compile(self) -> None:
        # Longest first, so a secret containing another is masked whole.
        ordered = sorted(self._counts, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None
        self._whole = frozenset(ordered)
        self.longest = len(ordered[0]) if ordered else 0

    def __call__(self, text: str) -> str:
        pattern = self._pattern
        if pattern is None or not text:
            return text
        return pattern.sub(MASK, text)

    def spans(self, text: str) -> list[tuple[int, int]]:
        """Where secrets occur in ``text`` (start, end), as ``__call__`` would mask them."""
        pattern = self._pattern
        return [m.span() for m in pattern.finditer(text)] if pattern is not None and text else []

    def is_secret(self, text: str) -> bool:
        """Whether ``text`` is, as a whole, one of the secrets (in any spelling)."""
        return text in self._whole

    def head(self, text: str, limit: int) -> str:
        """The first ``limit`` characters of ``text``, unmasked, or more: up to the end of a secret the
        cut would split, so that masking the head afterwards leaves nothing of it readable."""
        end = limit
        for start, stop in self.spans(text[:limit + self.longest]):
            if start < limit < stop:
                end = stop
        return text[:end]

    def clip(self, text: str, limit: int, ellipsis: str = "") -> str:
        """``text`` masked, then cut to ``limit`` characters (``ellipsis`` counted in): never cut first."""
        masked = self(text)
        if len(masked) <= limit:
            return masked
        return masked[:max(limit - len(ellipsis), 0)] + ellipsis

    def __bool__(self) -> bool:
        return bool(self._counts)


known_secrets = Secrets(min_length=_MIN_HEADER_SECRET)
"""The secrets of every open session (registered through ``log_mask``): what every sink masks."""


def mask_known(text: str) -> str:
    """``text`` with the secrets of every open session masked."""
    return known_secrets(text)


def head(text: str, limit: int) -> str:
    """``known_secrets.head``: a prefix of ``text`` that splits no known secret (mask it before showing)."""
    return known_secrets.head(text, limit)


def clip(text: str, limit: int, ellipsis: str = "", *, secrets: Secrets | None = None) -> str:
    """``text`` with known secrets (``secrets``, default ``known_secrets``) masked, then cut to ``limit``."""
    return (known_secrets if secrets is None else secrets).clip(text, limit, ellipsis)


# ``scheme://user:password@`` and ``?name=value`` anywhere in a text (a repr quoting a URL).
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/@:'\"]*:)(?P<secret>[^\s@'\"]*)@")
_QUERY_VALUE = re.compile(r"(?P<head>[?&;](?P<name>[^\s=&#'\"]+)=)(?P<secret>[^\s&#'\"]*)")


def mask_repr(text: str) -> str:
    """A repr (or any text quoting URLs) with URL passwords, secret query values and known secrets masked."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}@" if m["secret"] else m.group(0), text)
    text = _QUERY_VALUE.sub(lambda m: f"{m['head']}{MASK}" if is_secret_name(m["name"]) and m["secret"]
                            else m.group(0), text)
    return known_secrets(text)


def dataclass_repr(value: Any) -> str:
    """A dataclass's usual repr (fields with ``repr=True``), passed through ``mask_repr``: for values
    that may hold a URL with a password or a secret a session knows."""
    shown = ", ".join(f"{f.name}={getattr(value, f.name)!r}" for f in dataclasses.fields(value) if f.repr)
    return mask_repr(f"{type(value).__name__}({shown})")


# -- evidence marks -----------------------------------------------------------------------------

_evidence_key: bytes | None = None
_EVIDENCE = re.compile(r"\*\*\*\[(?:[^\s,\]]+…, )?\d+ chars?, hmac:[0-9a-f]{8}\]")
_HINT = re.compile(r"[A-Za-z]{1,10}[-_]")
# What masking already wrote: a shape must not match it again (masking twice changes nothing).
_MASKED = re.compile(_EVIDENCE.pattern + "|" + re.escape(MASK))


def set_evidence_key(key: str | bytes | None) -> bytes | None:
    """Use ``key`` for the HMAC of evidence marks from now on (``None``: ``$MCP_BRIDGE_EVIDENCE_KEY``,
    else a fresh random key); returns the key used until now (``None`` if none was yet), so that
    it can be put back.

    Raises:
        ValueError: ``key`` is empty.
    """
    global _evidence_key
    if key is not None and not key:
        raise ValueError("the evidence key must not be empty; pass None for a random key per process")
    previous, _evidence_key = _evidence_key, key.encode("utf-8") if isinstance(key, str) else key
    return previous


def _key() -> bytes:
    global _evidence_key
    if _evidence_key is None:
        configured = os.environ.get(EVIDENCE_KEY_ENV, "")
        _evidence_key = configured.encode("utf-8") if configured else os.urandom(32)
    return _evidence_key


def evidence(value: str, hint: str = "") -> str:
    """The mark that stands for a masked credential: ``***[hint…, N chars, hmac:xxxxxxxx]``.

    ``hint`` is a non-secret prefix the credential's shape fixes (``sk-``); the HMAC is keyed (see
    the module's docstring), so equal values give equal marks and the value cannot be recovered.
    """
    digest = hmac.new(_key(), value.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()[:8]
    size = len(value)
    lead = f"{hint}…, " if hint else ""
    return f"{MASK}[{lead}{size} char{'' if size == 1 else 's'}, hmac:{digest}]"


def _shape_spans(text: str) -> list[tuple[int, int, str]]:
    """Credential-shaped tokens in ``text``: (start, end, the shape's non-secret prefix), in order."""
    found: list[tuple[int, int, str]] = []
    for shape in _shapes:
        grouped = _SECRET_GROUP in shape.groupindex
        for m in shape.finditer(text):
            start, end = m.span(_SECRET_GROUP) if grouped else m.span()
            hint = ""
            if not grouped and (prefix := _HINT.match(m.group())) and len(m.group()) > prefix.end() + 4:
                hint = prefix.group()
            if end > start:
                found.append((start, end, hint))
    masked = [m.span() for m in _MASKED.finditer(text)]
    found = sorted(f for f in found if not any(f[0] < end and start < f[1] for start, end in masked))
    merged: list[tuple[int, int, str]] = []
    for span in found:
        if merged and span[0] < merged[-1][1]:
            last = merged[-1]
            merged[-1] = (last[0], max(last[1], span[1]), last[2])
        else:
            merged.append(span)
    return merged


def mask_shapes(text: str) -> str:
    """``text`` with each credential-shaped token replaced by its evidence mark; the rest kept."""
    spans = _shape_spans(text)
    if not spans:
        return text
    parts: list[str] = []
    at = 0
    for start, end, hint in spans:
        parts += [text[at:start], evidence(text[start:end], hint)]
        at = end
    parts.append(text[at:])
    return "".join(parts)


def mask_data(value: Any, extra_names: re.Pattern[str] | None = None, *, known: Secrets | None = None) -> Any:
    """A copy of JSON-like ``value`` fit to show a reviewer or keep in an audit trail.

    Known secrets (``known``, default ``known_secrets``) become ``***`` wherever they occur;
    the value of an entry whose key names a secret (or matches ``extra_names``) and each
    credential-shaped token become evidence marks (``evidence``); everything else is kept as is.
    Masking an already masked value changes nothing.
    """
    return _masked(value, extra_names, known_secrets if known is None else known)


def _masked(value: Any, extra: re.Pattern[str] | None, known: Secrets) -> Any:
    if isinstance(value, Mapping):
        return {k: _named(v, known) if _secret_key(str(k), extra) else _masked(v, extra, known)
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_masked(v, extra, known) for v in value]
    if isinstance(value, str):
        return mask_shapes(known(value))
    return value


def _named(value: Any, known: Secrets) -> Any:
    """The value of a secret-named entry: its evidence mark (nothing of it shown but its length)."""
    if value is None or isinstance(value, bool) or value == "":
        return value  # nothing secret in an absent value, and "no token given" is worth seeing
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    if text == MASK or _EVIDENCE.fullmatch(text):
        return text
    if known.is_secret(text):
        return MASK
    return evidence(text)


def _secret_key(key: str, extra: re.Pattern[str] | None) -> bool:
    return is_secret_name(key) or (extra is not None and bool(extra.search(key)))


class _LogMask(logging.Filter):
    """Masks the secrets of every open session in log records (message, arguments, traceback).

    Foreign libraries log text we do not control: httpx2 logs request URLs, the SDK logs a
    server's unparseable output (which may quote its own API key). The filter sits on the
    loggers of those libraries and ours while any session with secrets is open.
    """

    _PREFIXES = ("bridge", "mcp", "client", "httpx2", "httpcore2")

    def __init__(self, secrets: Secrets) -> None:
        super().__init__()
        self.secrets = secrets
        self._installed: set[str] = set()

    def add(self, values: Iterable[str]) -> None:
        self.secrets.add(values)
        # Loggers are created at import time, so every module logger exists by now.
        for name, item in list(logging.Logger.manager.loggerDict.items()):
            if name not in self._installed and isinstance(item, logging.Logger) and \
                    name.split(".")[0] in self._PREFIXES:
                item.addFilter(self)
                self._installed.add(name)

    def remove(self, values: Iterable[str]) -> None:
        self.secrets.remove(values)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging module's problem, not ours
            return True
        masked = self.secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.secrets(record.exc_text)
        return True


log_mask = _LogMask(known_secrets)
"""Sessions register their secrets here while open (``log_mask.add(values)``, then ``remove``):
they join ``known_secrets``, and records of the bridge, the SDK and httpx2 are masked meanwhile."""
