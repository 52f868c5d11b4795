"""Coverage gaps: the questions the docs did not answer (refused, or answered and rated "not helpful"),
grouped by meaning, biggest group first, each with the page that came closest. This is the list of docs
to write next.

Questions are embedded with the service's embedder and clustered by average-linkage hierarchical
clustering on cosine distance (``fastcluster``, a small numpy-only C++ implementation that also fits in
the Lambda bundles), cut at ``max_distance``. Nothing is random: the same questions give the same groups
in any order. Exact repeats are counted once for clustering and weighted by their count; at most
``max_questions`` distinct questions (the most recent) are clustered, since the distance matrix grows
with their square (4,000 questions: 64 MB).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np
from pydantic import Field

from shared.embeddings.base import Embedder
from shared.extras import needs_extra
from shared.feedback import Interaction
from shared.models import SearchHit, StrictModel

#: Cosine distance at which two groups of questions stop being merged (similarity 0.55 for MiniLM).
DEFAULT_MAX_DISTANCE = 0.45
DEFAULT_MAX_QUESTIONS = 4000
MAX_CLUSTERS = 25
EXAMPLES = 3


class GapPage(StrictModel):
    page: str = Field(description="URL when known, else the source.")
    title: str | None = None
    score: float = Field(description="Retrieval score of its best passage for the group's central question.")


class GapCluster(StrictModel):
    size: int = Field(description="Questions in the group (repeats included).")
    refused: int
    rated_down: int
    questions: list[str] = Field(description="Up to 3 representative questions, the most central first.")
    closest_pages: list[GapPage] = Field(description="The pages that nearly answered, best first.")


class GapsReport(StrictModel):
    since: str
    until: str
    collection: str | None = None
    considered: int = Field(description="Refused or rated-down questions in the period.")
    clustered: int = Field(description="Distinct questions clustered (the most recent, at most the cap).")
    clusters: list[GapCluster]


@dataclass
class _Question:
    text: str
    count: int = 0
    refused: int = 0
    rated_down: int = 0
    latest: str = ""
    collections: set[str] = field(default_factory=set)


def gap_questions(interactions: Iterable[Interaction]) -> tuple[int, list[_Question]]:
    """(questions considered, distinct ones newest first): refusals and answers rated down."""
    found: dict[str, _Question] = {}
    considered = 0
    for item in interactions:
        refused, down = item.decision == "refuse", item.helpful is False
        if not (refused or down):
            continue
        considered += 1
        key = " ".join(item.question.lower().split())
        q = found.setdefault(key, _Question(item.question))
        q.count += 1
        q.refused += refused
        q.rated_down += down and not refused
        q.latest = max(q.latest, item.created_at)
        q.collections.add(item.collection or "default")
    return considered, sorted(found.values(), key=lambda q: q.latest, reverse=True)


def cluster_labels(vectors: np.ndarray, max_distance: float) -> list[int]:
    """Average-linkage clusters on cosine distance, cut at ``max_distance``; labels by first member."""
    n = len(vectors)
    if n < 2:
        return [0] * n
    with needs_extra("report", "coverage gaps"):
        import fastcluster

    unit = np.asarray(vectors, dtype=np.float32)
    unit = unit / np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), 1e-12)
    condensed = np.empty(n * (n - 1) // 2, dtype=np.float64)  # cosine distances, row by row
    start = 0
    for i in range(n - 1):
        row = 1.0 - unit[i + 1 :] @ unit[i]
        condensed[start : start + len(row)] = np.clip(row, 0.0, 2.0)
        start += len(row)
    merges = fastcluster.linkage(condensed, method="average")
    parent = list(range(2 * n - 1))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for step, (a, b, distance, _size) in enumerate(merges):
        if distance <= max_distance:  # heights only grow in average linkage: the cut is a prefix
            parent[root(int(a))] = parent[root(int(b))] = n + step
    labels: dict[int, int] = {}
    return [labels.setdefault(root(i), len(labels)) for i in range(n)]


def find_gaps(
    interactions: Iterable[Interaction],
    *,
    embedder: Embedder,
    search: Callable[[str], list[SearchHit]],
    since: str,
    until: str,
    collection: str | None = None,
    max_distance: float = DEFAULT_MAX_DISTANCE,
    max_questions: int = DEFAULT_MAX_QUESTIONS,
) -> GapsReport:
    considered, questions = gap_questions(interactions)
    questions = sorted(questions[:max_questions], key=lambda q: q.text)  # order-independent input
    clusters: list[GapCluster] = []
    if questions:
        vectors = np.asarray(embedder.embed_documents([q.text for q in questions]), dtype=np.float32)
        labels = cluster_labels(vectors, max_distance)
        groups: dict[int, list[int]] = {}
        for i, label in enumerate(labels):
            groups.setdefault(label, []).append(i)
        ranked = sorted(
            groups.values(), key=lambda g: (-sum(questions[i].count for i in g), questions[g[0]].text)
        )
        clusters = [_describe([questions[i] for i in g], vectors[g], search) for g in ranked[:MAX_CLUSTERS]]
    return GapsReport(
        since=since,
        until=until,
        collection=collection,
        considered=considered,
        clustered=len(questions),
        clusters=clusters,
    )


def _describe(
    members: list[_Question], vectors: np.ndarray, search: Callable[[str], list[SearchHit]]
) -> GapCluster:
    centre = vectors.mean(axis=0)
    centrality = vectors @ centre
    order = sorted(
        range(len(members)), key=lambda i: (-float(centrality[i]), -members[i].count, members[i].text)
    )
    pages: dict[str, GapPage] = {}
    for hit in search(members[order[0]].text):
        page = hit.url or hit.source
        if page not in pages:
            pages[page] = GapPage(page=page, title=hit.title, score=round(hit.score, 4))
    return GapCluster(
        size=sum(q.count for q in members),
        refused=sum(q.refused for q in members),
        rated_down=sum(q.rated_down for q in members),
        questions=[members[i].text for i in order[:EXAMPLES]],
        closest_pages=list(pages.values())[:EXAMPLES],
    )
