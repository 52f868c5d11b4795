"""BM25 index (bm25s) over the chunks of a store, persisted beside it.

The index is derived data: it is rebuilt from the store's chunk texts whenever they change, so it can
never drift from the dense index for long. Filters are applied with bm25s' ``weight_mask``: each row
keeps its chunk's source, tags and collection (an index saved before collections holds only the default).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shared.errors import StoreError
from shared.extras import needs_extra
from shared.models import DEFAULT_COLLECTION, SearchFilter
from shared.text import LEXICAL_STOPWORDS, stem_all, words

_META = "chunks.json"
_SWAP_ATTEMPTS = 20


def lexical_tokens(text: str) -> list[str]:
    return stem_all([w for w in words(text) if w not in LEXICAL_STOPWORDS])


class LexicalIndex:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path
        self.ids: list[str] = []
        self.sources: list[str] = []
        self.tags: list[list[str]] = []
        self.collections: list[str] = []
        self._bm25: Any = None
        if path is not None and (path / _META).is_file():
            self._load(path)

    def __len__(self) -> int:
        return len(self.ids)

    def build(
        self,
        ids: Sequence[str],
        texts: Sequence[str],
        sources: Sequence[str],
        tags: Sequence[list[str]],
        collections: Sequence[str] | None = None,
    ) -> None:
        with needs_extra("local", "BM25 search"):
            import bm25s

        self.ids, self.sources, self.tags = list(ids), list(sources), [list(t) for t in tags]
        self.collections = (
            list(collections) if collections is not None else [DEFAULT_COLLECTION] * len(self.ids)
        )
        if not self.ids:
            self._bm25 = None
        else:
            bm25 = bm25s.BM25()
            bm25.index([lexical_tokens(t) for t in texts], show_progress=False)
            self._bm25 = bm25
        if self.path is not None:
            self._save(self.path)

    def allowed(self, filters: SearchFilter | None) -> np.ndarray | None:
        """The rows ``filters`` lets through, as a boolean mask (None: every row)."""
        if filters is None or filters.is_empty:
            return None
        rows = zip(self.sources, self.tags, self.collections, strict=True)
        return np.array([filters.matches(s, t, c) for s, t, c in rows], dtype=bool)

    def search(self, query: str, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """``(row, score)`` pairs, best first; ``allowed`` is a boolean mask over rows."""
        if self._bm25 is None or k <= 0:
            return []
        vocab = self._bm25.vocab_dict
        tokens = [t for t in lexical_tokens(query) if t in vocab]
        if not tokens:
            return []
        scores = np.asarray(self._bm25.get_scores(tokens), dtype=np.float32)
        if allowed is not None:
            scores = np.where(allowed, scores, 0.0)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(i), float(scores[i])) for i in top if scores[i] > 0.0]

    def term_counts(self, terms: Sequence[str], collection: str | None = None) -> dict[str, int]:
        """How many indexed chunks (of ``collection``, else all) contain each term (analysed as the
        lexical leg analyses text: a term counts as found when its stem is in the index). Stop words and
        empty terms count as found."""
        counts: dict[str, int] = {}
        vocab = self._bm25.vocab_dict if self._bm25 is not None else {}
        indptr = self._bm25.scores["indptr"] if self._bm25 is not None else None
        if collection is not None and self._bm25 is not None:
            return self._collection_counts(terms, collection)
        for term in terms:
            tokens = lexical_tokens(term)
            if not tokens:
                counts[term] = len(self.ids)
                continue
            # a term that analyses to several tokens ("e-mail") is found where its rarest token is
            found = [vocab.get(t) for t in tokens]
            if indptr is None or any(i is None for i in found):
                counts[term] = 0
            else:
                counts[term] = min(int(indptr[i + 1] - indptr[i]) for i in found if i is not None)
        return counts

    def _collection_counts(self, terms: Sequence[str], collection: str) -> dict[str, int]:
        """:meth:`term_counts` within one collection: the chunks holding a token, from the index's
        column for it, counted where the chunk belongs to ``collection``."""
        assert self._bm25 is not None
        vocab, scores = self._bm25.vocab_dict, self._bm25.scores
        member = np.array([c == collection for c in self.collections], dtype=bool)
        counts: dict[str, int] = {}
        for term in terms:
            tokens = lexical_tokens(term)
            if not tokens:
                counts[term] = int(member.sum())
                continue
            found = [vocab.get(t) for t in tokens]
            if any(i is None for i in found):
                counts[term] = 0
                continue
            counts[term] = min(
                int(member[scores["indices"][scores["indptr"][i] : scores["indptr"][i + 1]]].sum())
                for i in found
                if i is not None
            )
        return counts

    # ------------------------------------------------------------------ persistence

    def _save(self, path: Path) -> None:
        """Write to a folder of this call's own, then swap it in by renames: two savers never share a
        temporary path, and a reader sees the old index or the new one (or none, rebuilt on open)."""
        unique = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp = path.with_name(f"{path.name}.tmp-{unique}")
        tmp.mkdir(parents=True)
        try:
            if self._bm25 is not None:
                self._bm25.save(str(tmp / "bm25"), show_progress=False)
            (tmp / _META).write_text(
                json.dumps(
                    {
                        "ids": self.ids,
                        "sources": self.sources,
                        "tags": self.tags,
                        "collections": self.collections,
                    }
                ),
                encoding="utf-8",
            )
            old = path.with_name(f"{path.name}.old-{unique}")
            for _ in range(_SWAP_ATTEMPTS):
                with contextlib.suppress(FileNotFoundError):
                    path.rename(old)  # another saver may have moved it already
                try:
                    tmp.rename(path)
                    break
                except OSError as exc:  # another saver put its index in between: move that aside too
                    if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                        raise
                    shutil.rmtree(old, ignore_errors=True)
            else:
                raise StoreError(
                    f"cannot replace the lexical index at {path}: other writers keep replacing it"
                )
            shutil.rmtree(old, ignore_errors=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _load(self, path: Path) -> None:
        try:
            meta = json.loads((path / _META).read_text(encoding="utf-8"))
            self.ids, self.sources, self.tags = meta["ids"], meta["sources"], meta["tags"]
            self.collections = meta.get("collections") or [DEFAULT_COLLECTION] * len(self.ids)
            if len(self.collections) != len(self.ids):
                raise ValueError("collections and ids differ in length")
            if self.ids:
                with needs_extra("local", "BM25 search"):
                    import bm25s

                self._bm25 = bm25s.BM25.load(str(path / "bm25"), show_progress=False)
        except (OSError, ValueError, KeyError) as exc:
            raise StoreError(
                f"lexical index at {path} is unreadable ({exc}); re-ingest to rebuild it"
            ) from exc
