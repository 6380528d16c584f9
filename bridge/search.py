"""Full-text search over tool definitions: SQLite FTS5 with BM25 ranking, in memory.

A deferred catalogue shows the model a search tool instead of every schema; this index answers
it. Each tool is one document with weighted columns: its name split into words (``send_email``,
``sendEmail``, ``get-sum`` and ``mail.send`` all become words), its title, its description, and
its arguments' names and descriptions. Queries are the model's own words; they are tokenised
the same way and OR-ed, so BM25 ranks tools by how many of the words they carry and how rare
those words are. The Porter stemmer makes ``replying`` find ``reply``.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = ["ToolIndex", "words"]

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD = re.compile(r"[A-Za-z0-9]+")

# Column weights for bm25(): a word in the name says most about what a tool does.
_WEIGHTS = (8.0, 4.0, 2.0, 1.0)


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
        terms = sorted(set(words(query)), key=words(query).index)
        if not terms:
            return []
        match = " OR ".join(f'"{t}"' for t in terms)
        rows = self._db.execute(
            f"SELECT key FROM tools WHERE tools MATCH ? ORDER BY bm25(tools, 0, {', '.join(map(str, _WEIGHTS))}) "
            "LIMIT ?", (match, max(1, limit))).fetchall()
        return [str(r[0]) for r in rows]

    def close(self) -> None:
        self._db.close()
