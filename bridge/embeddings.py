"""Similarity of short texts by meaning: WordLlama's static token embeddings, when they are installed.

Lexical search finds a tool only through a word its description shares with the request;
"write a new message" and ``send_email`` share none. A static embedding model places words of
like meaning near each other, so the ranking can weigh that in (``bridge.search`` fuses it with
BM25). It is an optional extra (``pip install 'autogen-mcp-bridge[search]'``): WordLlama's wheel
carries its 256-dimensional model (16 MB) and tokenizer, read here from the installed package's
folder with ``tokenizers`` and ``safetensors``. Its own loader is never used (it looks for the
tokenizer in the wrong folder and then downloads it; importing it also reconfigures logging), so
nothing here touches the network.

A text's vector is the mean of its tokens' vectors, each weighted by how rare the token is in the
texts indexed together (frequent tokens such as "the" or a word every tool carries say little),
then scaled to unit length; similarity is the cosine.
"""

from __future__ import annotations

import functools
import importlib.util
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from tokenizers import Tokenizer

__all__ = ["MODEL", "SemanticIndex", "available"]

MODEL = "l2_supercat_256"
"""The WordLlama model its wheel ships (Llama 2 tokenizer, 256 dimensions)."""
_WEIGHTS = f"weights/{MODEL}.safetensors"
_TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"


def _installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a blocked import (sys.modules[name] = None) reads as absent
        return False


def _package_dir() -> Path | None:
    # find_spec locates the package without importing (running) it.
    spec = importlib.util.find_spec("wordllama") if _installed("wordllama") else None
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]) if locations else None


@functools.lru_cache(maxsize=1)
def available() -> bool:
    """Whether the model files and the libraries that read them are installed."""
    folder = _package_dir()
    if folder is None or not (folder / _WEIGHTS).is_file() or not (folder / _TOKENIZER).is_file():
        return False
    return all(map(_installed, ("numpy", "tokenizers", "safetensors")))


@functools.lru_cache(maxsize=1)
def _model() -> tuple[Tokenizer, np.ndarray[Any, Any]]:
    """The tokenizer and the token vectors (float32), read once per process."""
    import numpy as np
    from safetensors.numpy import load_file
    from tokenizers import Tokenizer

    folder = _package_dir()
    if folder is None:
        raise ImportError("wordllama is not installed: pip install 'autogen-mcp-bridge[search]'")
    tensors = load_file(str(folder / _WEIGHTS))
    (vectors,) = tensors.values()
    return Tokenizer.from_file(str(folder / _TOKENIZER)), np.ascontiguousarray(vectors, dtype=np.float32)


class SemanticIndex:
    """Unit vectors of ``texts``, to rank them by cosine similarity to a query."""

    def __init__(self, texts: Sequence[str]) -> None:
        import numpy as np

        self._tokenizer, self._vectors = _model()
        docs = self._ids(texts)
        counts: dict[int, int] = {}
        for doc in docs:
            for token in set(doc):
                counts[token] = counts.get(token, 0) + 1
        size = len(docs)
        # A token's weight is its inverse document frequency in these texts; one they never carry
        # (a query's own word) weighs as much as the rarest.
        self._idf = np.full(self._vectors.shape[0], math.log((size + 1) / 0.5), dtype=np.float32)
        for token, count in counts.items():
            self._idf[token] = math.log((size + 1) / (count + 0.5))
        self._matrix = (np.stack([self._embed(doc) for doc in docs]) if docs
                        else np.zeros((0, self._vectors.shape[1]), dtype=np.float32))

    def _ids(self, texts: Sequence[str]) -> list[list[int]]:
        limit = self._vectors.shape[0]
        return [[t for t in e.ids if t < limit] for e in self._tokenizer.encode_batch(list(texts),
                                                                                      add_special_tokens=False)]

    def _embed(self, ids: list[int]) -> np.ndarray[Any, Any]:
        import numpy as np

        if not ids:
            return np.zeros(self._vectors.shape[1], dtype=np.float32)
        return _unit(self._idf[ids] @ self._vectors[ids])

    def similarities(self, query: str, toward: Mapping[int, float] | None = None) -> list[float]:
        """The cosine similarity of ``query`` to each text, in the order the texts were given.

        With ``toward`` (a text's position: a weight), the query's vector first moves toward those
        texts' vectors, each by its weight (Rocchio's relevance feedback), then back to unit length.
        """
        import numpy as np

        if not len(self._matrix):
            return []
        vector = self._embed(self._ids([query])[0])
        if toward:
            weights = np.fromiter(toward.values(), dtype=np.float32, count=len(toward))
            vector = _unit(vector + weights @ self._matrix[list(toward)])
        scores: list[float] = (self._matrix @ vector).tolist()
        return scores


def _unit(vector: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    import numpy as np

    norm = float(np.linalg.norm(vector))
    return vector / norm if norm else vector
