"""Every rule for keeping secrets out of sight, in one place.

Two kinds of secret are masked, and both by the rules here:

* **Known values**: what a target was given to authenticate with (every stdio ``env`` value,
  credential headers and their bearer tokens, a URL's password, secret query parameters).
  ``Secrets`` holds them and masks them in any text: log lines (``log_mask``), error messages,
  CLI output, stderr quoted from a dying server. Each value is also masked in its JSON-escaped
  and percent-encoded spellings, because a secret quoted inside a JSON dump or a URL is spelt
  differently from the raw value.
* **Secret-looking data**: tool arguments and results are the agent's, not ours, so values are
  unknown; ``mask_data`` masks entries whose *key* names a secret (password, token, api_key,
  ...) and strings whose *shape* is a credential (``Bearer ...``, ``sk-...``). The shapes are a
  list a deployment can extend with ``add_key_shapes`` (``bridge.multimail`` adds MultiMail's).

Values shorter than a few characters are never treated as secrets: ``1`` or ``true`` occur
everywhere, and masking them would garble ordinary text.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

__all__ = [
    "MASK",
    "Secrets",
    "add_key_shapes",
    "env_secrets",
    "header_secrets",
    "is_secret_name",
    "log_mask",
    "mask_data",
    "mask_text",
    "mask_url",
    "url_secrets",
]

MASK = "***"

_MIN_ENV_SECRET = 6
_MIN_HEADER_SECRET = 4

_SECRET_NAME = re.compile(
    r"pass(word|wd|phrase)|^pass$|secret|token|api[-_]?key|apikey|authorization|credential|private[-_]?key|cookie"
    r"|session[-_]?id|approval[-_]?code|otp$",
    re.IGNORECASE,
)
_AUTH_SCHEME = re.compile(r"^(?:bearer|basic|token|digest)\s+(\S+)$", re.IGNORECASE)

_key_shapes: list[str] = [
    r"^(bearer|basic)\s+\S+",
    r"^(sk|ghp|gho|ghs|github_pat|xox[abprs])[-_][A-Za-z0-9_-]{8,}",
    r"^AKIA[0-9A-Z]{16}$",
]
_shape_pattern = re.compile("|".join(_key_shapes), re.IGNORECASE)


def add_key_shapes(*patterns: str) -> None:
    """Treat strings matching these regexes as credentials wherever ``mask_data`` looks.

    Raises:
        re.error: a pattern does not compile.
    """
    global _shape_pattern
    for pattern in patterns:
        re.compile(pattern)
        if pattern not in _key_shapes:
            _key_shapes.append(pattern)
    _shape_pattern = re.compile("|".join(_key_shapes), re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    """Whether a header, query parameter or argument with this name holds a credential."""
    return bool(_SECRET_NAME.search(name))


def header_secrets(name: str, value: str) -> list[str]:
    """The parts of a header value that must never be shown (``Bearer x`` hides ``x`` too)."""
    if not is_secret_name(name) or len(value) < _MIN_HEADER_SECRET:
        return []
    found = [value]
    scheme = _AUTH_SCHEME.match(value.strip())
    if scheme and len(scheme.group(1)) >= _MIN_HEADER_SECRET:
        found.append(scheme.group(1))
    return found


def env_secrets(value: str) -> list[str]:
    """An environment value is treated as a secret unless it is too short to be one."""
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


def _spellings(value: str) -> set[str]:
    return {value, json.dumps(value)[1:-1], json.dumps(value, ensure_ascii=False)[1:-1], quote(value, safe="")}


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

    def __call__(self, text: str) -> str:
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(MASK, text)

    def __bool__(self) -> bool:
        return bool(self._counts)


def mask_data(value: Any, extra_names: re.Pattern[str] | None = None) -> Any:
    """A copy of JSON-like ``value`` with secret-named entries and credential-shaped strings masked."""
    if isinstance(value, Mapping):
        return {k: (MASK if _secret_key(str(k), extra_names) else mask_data(v, extra_names))
                for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_data(v, extra_names) for v in value]
    if isinstance(value, str) and _shape_pattern.search(value):
        return MASK
    return value


def _secret_key(key: str, extra: re.Pattern[str] | None) -> bool:
    return is_secret_name(key) or (extra is not None and bool(extra.search(key)))


class _LogMask(logging.Filter):
    """Masks the secrets of every open session in log records (message, arguments, traceback).

    Foreign libraries log text we do not control: httpx2 logs request URLs, the SDK logs a
    server's unparseable output (which may quote its own API key). The filter sits on the
    loggers of those libraries and ours while any session with secrets is open.
    """

    _PREFIXES = ("bridge", "mcp", "client", "httpx2", "httpcore2")

    def __init__(self) -> None:
        super().__init__()
        self.secrets = Secrets()
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


log_mask = _LogMask()
"""Sessions register their secrets here while open (``log_mask.add(values)``, then ``remove``);
records of the bridge, the SDK and httpx2 are masked meanwhile."""

