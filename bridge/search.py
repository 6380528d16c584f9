"""Full-text search over tool definitions: SQLite FTS5 with BM25 ranking, in memory.

A deferred catalogue shows the model a search tool instead of every schema; this index answers
it. Each tool is one document with weighted columns: its name split into words (``send_email``,
``sendEmail``, ``get-sum`` and ``mail.send`` all become words), its title, its description, and
its arguments' names and descriptions. Documents and queries go through the same analysis:
words are lower-cased and reduced by the Snowball English stemmer (``saved`` and ``saving`` both
become ``save``), so FTS5 stores stems and matches them exactly.

What a query may carry is bounded and only words count: filler words ("who is in my ...") are
dropped, tokens that are not words (a pasted base64 blob, a hash, an id) are ignored, and at most
``MAX_TERMS`` distinct words are looked up. A few general English synonyms (``folder`` for
``directory``, ``picture`` for ``image``) come along at a lower weight; nothing in that list
knows any server's vocabulary. A tool whose description says it is deprecated ranks below the
tools that match as well and are not.

With the ``search`` extra installed (``bridge.embeddings``), the ranking also weighs meaning: each
tool's name, title and first sentence are embedded, and a tool's score is a weighted sum of its
BM25 score (scaled by the best one) and its cosine similarity to the request, so a tool that
shares no word with the request ("write a new message" for ``send_email``) can still be found.
The request's meaning is then refined by pseudo-relevance feedback (Rocchio): its vector moves
toward those of the best few tools of that first ranking, and the tools are ranked again, so a tool
described in the words of the best matches rises although the request shares none of them.
Without the extra the ranking is lexical only.

The choices here were measured (``benchmarks/bench_search.py``) on intents written before the
ranking and on a public benchmark (LiveMCPBench, its weights chosen on one half of its tasks and
checked on the other), not on the intents it was tuned on.
"""

from __future__ import annotations

import functools
import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import snowballstemmer  # type: ignore[import-untyped]  # ships no type information

from . import embeddings

__all__ = ["MAX_QUERY_CHARS", "MAX_TERMS", "ToolIndex", "is_deprecated", "query_terms", "query_words", "stem", "words"]

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_RUN = re.compile(r"[^\W_]+")
# A pasted blob (base64, a hex digest, a token): a chunk that switches from lower to upper case or
# between letters and digits every few characters (about every 2.4 in base64), as no word or
# identifier does (camelCase switches once per word).
_LONG = re.compile(r"\S{41,}")
_SWITCH = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=[0-9])|(?<=[0-9])(?=[A-Za-z])")
_BLOB_SWITCHES = 0.25
_MIN_BLOB = 12
# A word: ASCII letters, with digits only at one end ("base64", "utf8", "2fa", "mp3"); anything else
# mixing letters and digits ("a3f9c2") is an id. Other scripts are left out: the stemmer is English,
# and whole runs of Chinese text, taken as words, measured worse (their length only dilutes BM25).
_WORDLIKE = re.compile(r"[A-Za-z]+\d{0,4}|\d{1,4}[A-Za-z]{1,8}|\d+")
_MAX_WORD = 30

MAX_QUERY_CHARS = 65_536
"""How much of a query is read (a pasted document beyond this says nothing about a tool)."""
MAX_TERMS = 32
"""How many distinct words of a query are looked up, in the order they come."""

# Column weights for bm25(): name, title (with the server's name), description, arguments.
WEIGHTS = (3.0, 2.0, 1.0, 0.5)

# Words of a request that say nothing about which tool it needs: general English function words.
# Dropped from queries (not from documents), unless nothing else is left.
_STOP = frozenset("""
a about after again all also am an and any anything are as at be been before being but by can could did do
does doing done each every everything for from had has have having he her here hers him his how i if in into
is it its just let like me mine more most much my need needs now of off on once one only onto or other our
ours out over own please same she should so some something such than that the their theirs them then there
these they this those through to too up us very want was we were what when where whether which while who
whom whose why will with would you your yours called named titled
""".split())  # noqa: SIM905 (as a list literal, 150 words would fill a page)

# General English synonyms: what a dictionary lists, not what any server calls things. A query word
# in a group brings the group's other words along at a lower weight.
_SYNONYMS = [
    "delete remove erase",
    "create make",
    "show display",
    "find search locate look lookup",
    "change modify edit alter",
    "folder directory",
    "picture image photo",
    "junk spam",
    "big large",
    "begin start",
    "end finish",
    "message email mail",
    "write compose draft",
    "receive arrive incoming",
]
SYNONYM_WEIGHT = 0.5
SEMANTIC_WEIGHT = 0.7
"""With embeddings: a score is (1 - this) x BM25 / best BM25 + this x cosine similarity."""
SEMANTIC_FLOOR = 0.15
"""With embeddings: how similar in meaning a tool that shares no word with a request must be to be
found at all (unrelated texts measure below 0.1), so that a request for what no tool does still
finds nothing."""
FEEDBACK_TOOLS = 5
FEEDBACK_WEIGHT = 1.5
"""With embeddings: the request's vector moves toward the mean of the gists of the best
``FEEDBACK_TOOLS`` of a first ranking (weighted by their scores) by this much, then the tools are
ranked again (pseudo-relevance feedback: the best matches' other words say what the request is
about, so a tool described in those words rises although the request shares none of them)."""
_FIRST_SENTENCE = re.compile(r"(?<=[.!?])\s")
DEPRECATED_FACTOR = 0.5
"""A deprecated tool's score is scaled by this (BM25 scores here are higher-is-better)."""
_DEPRECATED = re.compile(r"\bdeprecated\b", re.IGNORECASE)

_STEMMER = snowballstemmer.stemmer("english")


@functools.lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """The Snowball English stem of a lower-case ``word``, keeping agent nouns whole.

    Porter2 removes a final "-er" in its derivational step, which joins nouns to unrelated
    words ("customer" to "custom", "container" to "contain"); an "-er" noun keeps its form.
    """
    stemmed: str = _STEMMER.stemWord(word)
    if word.endswith(("er", "ers")) and not stemmed.endswith("er"):
        return word[:-1] if word.endswith("ers") else word
    return stemmed


def words(text: str) -> list[str]:
    """Lower-case words of ``text``, splitting identifiers on ``_ - .`` and camelCase; what is not a
    word is left out: a blob or an id (a chunk switching case and digits all along, like base64),
    a part longer than 30 characters, one mixing letters and digits in the middle."""
    return [w for run in _runs(text) for w in _split(run)]


def _runs(text: str) -> list[str]:
    return _RUN.findall(_LONG.sub(_unblob, text))


# Runs repeat across a catalogue's descriptions: splitting and stemming each once keeps an index
# of 1,000 tools quick to build.
@functools.lru_cache(maxsize=1 << 16)
def _split(run: str) -> tuple[str, ...]:
    if _blob(run):
        return ()
    return tuple(w.lower() for w in _CAMEL.sub(" ", run).split() if len(w) <= _MAX_WORD and _WORDLIKE.fullmatch(w))


@functools.lru_cache(maxsize=1 << 16)
def _stems(run: str) -> str:
    return " ".join(stem(w) for w in _split(run))


def _blob(text: str) -> bool:
    return len(text) >= _MIN_BLOB and len(_SWITCH.findall(text)) > _BLOB_SWITCHES * len(text)


def _unblob(chunk: re.Match[str]) -> str:
    return " " if _blob(chunk.group(0)) else chunk.group(0)


def _analyse(text: str) -> str:
    return " ".join(filter(None, map(_stems, _runs(text))))


_GROUPS: dict[str, list[str]] = {}
for _group in _SYNONYMS:
    _members = [stem(w) for w in _group.split()]
    for _s in _members:
        _GROUPS.setdefault(_s, []).extend(o for o in _members if o != _s)


def query_words(query: str) -> list[str]:
    """A query's distinct words minus filler, bounded (see module doc)."""
    found = words(query[:MAX_QUERY_CHARS])
    kept = [w for w in found if w not in _STOP] or found
    return list(dict.fromkeys(kept))[:MAX_TERMS]


def query_terms(query: str) -> list[str]:
    """The stems a query is looked up by: the stems of ``query_words``."""
    return list(dict.fromkeys(stem(w) for w in query_words(query)))


def is_deprecated(description: str) -> bool:
    """Whether a tool's description says the tool is deprecated."""
    return bool(_DEPRECATED.search(description))


def _argument_text(schema: Mapping[str, Any], depth: int = 0) -> Iterable[str]:
    properties = schema.get("properties")
    if not isinstance(properties, Mapping) or depth > 3:
        return
    for name, prop in properties.items():
        yield str(name)
        if isinstance(prop, Mapping):
            if isinstance(prop.get("description"), str):
                yield prop["description"]
            yield from _argument_text(prop, depth + 1)
            items = prop.get("items")
            if isinstance(items, Mapping):
                yield from _argument_text(items, depth + 1)


class ToolIndex:
    """An in-memory FTS5 index of tools, rebuilt whenever the tool set changes.

    Args:
        tools: ``(key, name, title, description, input_schema)`` for each tool; ``key`` is what
            ``search`` returns.
        weights: BM25 column weights for name, title, description and arguments.
        synonyms: whether general English synonyms join a query.
        semantic: whether meaning (``bridge.embeddings``) joins the ranking; by default, when the
            ``search`` extra is installed.
        feedback: with meaning, whether a first ranking's best matches refine the request's
            meaning (see ``FEEDBACK_WEIGHT``).
    """

    def __init__(self, tools: Sequence[tuple[str, str, str | None, str, Mapping[str, Any]]], *,
                 weights: Sequence[float] = WEIGHTS, synonyms: bool = True, semantic: bool | None = None,
                 feedback: bool = True) -> None:
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        # The text is stemmed already: FTS5 only splits it on spaces and matches stems exactly.
        self._db.execute("CREATE VIRTUAL TABLE tools USING fts5(key UNINDEXED, name, title, description, arguments,"
                         " tokenize='unicode61 remove_diacritics 0')")
        self._db.executemany(
            "INSERT INTO tools VALUES (?, ?, ?, ?, ?)",
            [(key, _analyse(name), _analyse(title or ""), _analyse(description),
              _analyse("\n".join(_argument_text(schema)))) for key, name, title, description, schema in tools])
        self._deprecated = frozenset(key for key, _, _, description, _ in tools if is_deprecated(description))
        self._order = f"bm25(tools, 0, {', '.join(str(float(w)) for w in weights)})"
        self._synonyms = synonyms
        self._feedback = feedback
        self._keys = [key for key, *_ in tools]
        self._position = {key: i for i, key in enumerate(self._keys)}
        self._meaning = (embeddings.SemanticIndex([_gist(name, title, description)
                                                   for _, name, title, description, _ in tools])
                         if (embeddings.available() if semantic is None else semantic) else None)
        self.size = len(tools)

    @property
    def semantic(self) -> bool:
        """Whether meaning joins the ranking (see ``bridge.embeddings``)."""
        return self._meaning is not None

    def search(self, query: str, limit: int = 5) -> list[str]:
        """The keys of the best matches for ``query``, best first (empty when nothing matches)."""
        kept = query_words(query)
        if not kept:
            return []
        scores = self._lexical(list(dict.fromkeys(stem(w) for w in kept)))
        if self._meaning is not None:
            scores = self._fuse(scores, " ".join(kept), feedback=self._feedback)
        for key in self._deprecated & scores.keys():
            scores[key] *= DEPRECATED_FACTOR
        return sorted(scores, key=lambda k: (-scores[k], k))[: max(1, limit)]

    def _lexical(self, terms: list[str]) -> dict[str, float]:
        weights: dict[str, float] = dict.fromkeys(terms, 1.0)
        if self._synonyms:
            for term in terms:
                for other in _GROUPS.get(term, ()):
                    weights.setdefault(other, SYNONYM_WEIGHT)
        # BM25 is a sum over the query's terms, so scoring term by term lets each carry its own weight.
        scores: dict[str, float] = {}
        sql = f"SELECT key, {self._order} FROM tools WHERE tools MATCH ?"
        for term, weight in weights.items():
            for key, score in self._db.execute(sql, (f'"{term}"',)):
                scores[key] = scores.get(key, 0.0) - weight * float(score)  # bm25() is lower-is-better
        return scores

    def _fuse(self, lexical: dict[str, float], kept: str, *, feedback: bool = False) -> dict[str, float]:
        """BM25 scaled by the best match, weighed with the cosine similarity of the request's words
        (without filler, not stemmed) to each tool's gist; with ``feedback``, the request's meaning
        is first moved toward the gists of this ranking's best ``FEEDBACK_TOOLS``, weighted by score."""
        assert self._meaning is not None
        toward: dict[int, float] = {}
        if feedback:
            first = self._fuse(lexical, kept)
            top = sorted(first, key=lambda k: (-first[k], k))[:FEEDBACK_TOOLS]
            total = sum(first[k] for k in top) or 1.0
            toward = {self._position[k]: FEEDBACK_WEIGHT * first[k] / total for k in top}
        similar = self._meaning.similarities(kept, toward)
        best = max(lexical.values(), default=0.0) or 1.0
        return {key: (1 - SEMANTIC_WEIGHT) * lexical.get(key, 0.0) / best + SEMANTIC_WEIGHT * max(0.0, cosine)
                for key, cosine in zip(self._keys, similar, strict=True) if key in lexical or cosine >= SEMANTIC_FLOOR}

    def close(self) -> None:
        self._db.close()


def _gist(name: str, title: str | None, description: str) -> str:
    """What a tool is embedded by: its name's words, its title and its description's first sentence."""
    first = _FIRST_SENTENCE.split(description.strip(), maxsplit=1)[0][:200]
    return ". ".join(filter(None, [" ".join(words(name)), title, first]))
