"""Full-text search over tool definitions: SQLite FTS5 with BM25 ranking, in memory.

A deferred catalogue shows the model a search tool instead of every schema; this index answers
it. Each tool is one document with weighted columns: its name split into words (``send_email``,
``sendEmail``, ``get-sum`` and ``mail.send`` all become words), its title, its description, and
its arguments' names and descriptions. Queries are the model's own words, tokenised the same
way and scored term by term (BM25 is a sum over terms), so each term carries a weight: filler
words ("who is in my ...") are dropped, generic verbs and the words of a name (a file name, an
e-mail address, what follows "called") count for less than what the request is about, and a
small thesaurus of tool-catalogue vocabulary (``junk`` -> ``spam``, ``folder`` -> ``directory``)
brings in synonyms at a lower weight, except for words most tools carry. A word counts only as
much as its meaning is rare: BM25 weighs each term by its own rarity, which overrates a rare
synonym of a common word ("message" where every tool says "email"). The Porter stemmer makes
``replying`` find ``reply``.
"""

from __future__ import annotations

import math
import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["ToolIndex", "words"]

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD = re.compile(r"[A-Za-z0-9]+")

# Column weights for bm25(): a word in the name says most about what a tool does.
_WEIGHTS = (8.0, 4.0, 2.0, 1.0)

# Words of a request that say nothing about which tool it needs ("who is in my address book"):
# dropped from queries (not from documents), unless nothing else is left.
_STOP = frozenset("""
a about after again all also am an and any anything are as at be been before being but by can could did do
does doing done each every everything for from had has have having he her here hers him his how i if in into
is it its just let like me mine more most much my need needs now of off on once one only onto or other our
ours out over own please same she should so some something such than that the their theirs them then there
these they this those through to too up us very want was we were what when where whether which while who
whom whose why will with would you your yours called named titled
""".split())  # noqa: SIM905 (as a list literal, 150 words would fill a page)

# Words people use for what tool catalogues call otherwise. Each group is one meaning; a query
# word in a group brings the group's other words along (matched by stem, like every word).
# General vocabulary of tool catalogues only: what anyone would list without knowing the servers.
_SYNONYMS = [
    "delete remove erase drop forget discard destroy purge rid",
    "create make new add",
    "list show view display browse",
    "read open view print contents fetch",
    "write save store overwrite",
    "edit change modify update replace alter",
    "search find look locate lookup",
    "folder directory",
    "picture image photo png jpg jpeg gif media",
    "junk spam",
    "label tag",
    "message email mail",
    "send write compose deliver dispatch",
    "conversation thread",
    "remember memory knowledge forget",
    "fact observation note",
    "link relation connection relationship",
    "person entity",
    "approve approval review pending waiting held hold",
    "schedule scheduled later queued",
    "cancel stop withdraw",
    "history log audit activity",
    "plan subscription tier",
    "bounce blocked suppression",
    "size big large",
    "tree hierarchy",
    "rename move",
    "attachment attached",
    "entire whole",
    "recent recently latest newest",
]


def _stem(word: str) -> str:
    # Enough to look words up in _SYNONYMS ("folders", "replying", "bounced"); FTS5 stems properly.
    for suffix in ("ies", "ing", "ed", "es", "s"):
        # "-es" only after a sibilant (boxes, matches); "writes" is "write" + "s".
        if suffix == "es" and not word.endswith(("ses", "xes", "zes", "ches", "shes")):
            continue
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


_SYNONYM_WEIGHT = 0.6
_VERB_WEIGHT = 0.5
_NAME_WEIGHT = 0.3
_FILE_NAME = re.compile(r"\b[\w-]+\.[A-Za-z][A-Za-z0-9]{0,4}\b(?!@)")
_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
# "a folder called archive": the word after "called" is a name, "called" itself a filler word
# (which Porter would stem to "call", a word tool descriptions are full of).
_CALLED = re.compile(r"\b(?:called|named|titled)\s+[\"']?([\w.@-]+)", re.IGNORECASE)
_NAMED = re.compile(rf"{_ADDRESS.pattern}|{_FILE_NAME.pattern}")

# What a request does (its verb) says less about the tool than what it does it to.
_VERBS = frozenset(_stem(w) for g in _SYNONYMS[:7] for w in g.split()) | frozenset(
    _stem(w) for w in ("get", "set", "cancel", "stop", "withdraw", "send", "put", "give", "pull", "return"))

_GROUPS: dict[str, list[str]] = {}
for _group in _SYNONYMS:
    for _word in _group.split():
        _GROUPS.setdefault(_stem(_word), []).extend(w for w in _group.split() if w != _word)


def words(text: str) -> list[str]:
    """Lower-case words of ``text``, splitting identifiers on ``_ - .`` and camelCase."""
    return [w.lower() for part in _WORD.findall(_CAMEL.sub(" ", text)) for w in [part] if w]


def _argument_text(schema: Mapping[str, Any], depth: int = 0) -> Iterable[str]:
    properties = schema.get("properties")
    if not isinstance(properties, Mapping) or depth > 3:
        return
    for name, prop in properties.items():
        yield " ".join(words(str(name)))
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
    """

    def __init__(self, tools: Sequence[tuple[str, str, str | None, str, Mapping[str, Any]]]) -> None:
        self._db = sqlite3.connect(":memory:", check_same_thread=False)
        self._db.execute("CREATE VIRTUAL TABLE tools USING fts5(key UNINDEXED, name, title, description, arguments,"
                         " tokenize='porter unicode61')")
        self._db.executemany(
            "INSERT INTO tools VALUES (?, ?, ?, ?, ?)",
            [(key, " ".join(words(name)), title or "", description, "\n".join(_argument_text(schema)))
             for key, name, title, description, schema in tools])
        self.size = len(tools)

    def search(self, query: str, limit: int = 5) -> list[str]:
        """The keys of the best matches for ``query``, best first (empty when nothing matches)."""
        # A file name or an e-mail address says what kind of thing the request is about; its own
        # words ("notes" in notes.txt, "globex" in jo@globex.example) say little about the tool.
        named = {w for m in _NAMED.finditer(query) for w in words(m.group(0))}
        named.update(w for m in _CALLED.finditer(query) for w in words(m.group(1)))
        found = words(query)
        terms = sorted(set(found), key=found.index)
        if not terms:
            return []
        terms = [t for t in terms if t not in _STOP] or terms
        weights: dict[str, float] = {}

        def want(term: str, weight: float) -> None:
            weights[term] = max(weights.get(term, 0.0), weight)

        for term in terms:
            own = _NAME_WEIGHT if term in named else _VERB_WEIGHT if _stem(term) in _VERBS else 1.0
            group = _GROUPS.get(_stem(term), [])
            count = self._count(term)
            # A word is as telling as its meaning is rare: "message" is rare in a catalogue that
            # says "email" everywhere, but asks for no particular tool. BM25 weighs a term by its
            # own rarity, so scale it back to the rarity of the whole group.
            concept = self._idf(self._count(term, *group)) if group else self._idf(count)
            want(term, own * min(1.0, concept / self._idf(count)))
            # Synonyms bridge a gap in vocabulary ("junk" for a catalogue that says "spam"). A word
            # most tools carry says nothing about which one is meant, and neither do its synonyms:
            # they would only let a rarer synonym outvote the rest of the request.
            if count * 2 <= self.size:
                for other in group:
                    want(other, own * _SYNONYM_WEIGHT * min(1.0, concept / self._idf(self._count(other))))
        if _ADDRESS.search(query):
            want("email", 1.0)
        if _FILE_NAME.search(_ADDRESS.sub(" ", query)):
            want("file", 1.0)
        # BM25 is a sum over the query's terms, so scoring term by term lets each carry its own
        # weight: the things asked about count most, generic verbs and synonyms less.
        scores: dict[str, float] = {}
        order = f"bm25(tools, 0, {', '.join(map(str, _WEIGHTS))})"
        for term, weight in weights.items():
            for key, score in self._db.execute(f"SELECT key, {order} FROM tools WHERE tools MATCH ?",
                                               (f'"{term}"',)):
                scores[str(key)] = scores.get(str(key), 0.0) + weight * float(score)
        ranked = sorted(scores, key=lambda k: (scores[k], k))  # bm25 is negative: lower is better
        return ranked[: max(1, limit)]

    def _count(self, *terms: str) -> int:
        """How many tools carry any of ``terms``."""
        query = " OR ".join(f'"{t}"' for t in terms)
        return int(self._db.execute("SELECT count(*) FROM tools WHERE tools MATCH ?", (query,)).fetchone()[0])

    def _idf(self, count: int) -> float:
        """BM25's inverse document frequency (as FTS5 computes it) of a term ``count`` tools carry."""
        return math.log(1 + (self.size - count + 0.5) / (count + 0.5))

    def close(self) -> None:
        self._db.close()
