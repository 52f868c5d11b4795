"""Calibration: does a confidence of 0.8 mean that 8 answers in 10 are right?

A reliability table puts predictions into equal-width confidence bins and compares each bin's mean
confidence with the fraction of its predictions that were correct; the expected calibration error (ECE)
is the mean gap, weighted by how many predictions each bin holds (Guo et al., 2017).
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field


class ReliabilityBin(BaseModel):
    model_config = ConfigDict(extra="forbid")

    low: float = Field(description="Lower edge of the confidence bin (inclusive).")
    high: float = Field(description="Upper edge (exclusive, except 1.0).")
    count: int
    mean_confidence: float
    accuracy: float = Field(description="Fraction of the bin's predictions that were correct.")


def reliability_table(
    confidences: Sequence[float], correct: Sequence[bool], *, bins: int = 10
) -> list[ReliabilityBin]:
    """The non-empty bins of ``bins`` equal-width confidence intervals over [0, 1]."""
    if len(confidences) != len(correct):
        raise ValueError("confidences and correct differ in length")
    if bins < 1:
        raise ValueError("bins must be at least 1")
    grouped: list[list[tuple[float, bool]]] = [[] for _ in range(bins)]
    for conf, ok in zip(confidences, correct, strict=True):
        c = min(1.0, max(0.0, float(conf)))
        grouped[min(bins - 1, int(c * bins))].append((c, bool(ok)))
    table = []
    for i, members in enumerate(grouped):
        if not members:
            continue
        table.append(
            ReliabilityBin(
                low=round(i / bins, 4),
                high=round((i + 1) / bins, 4),
                count=len(members),
                mean_confidence=round(sum(c for c, _ in members) / len(members), 4),
                accuracy=round(sum(ok for _, ok in members) / len(members), 4),
            )
        )
    return table


def expected_calibration_error(table: Sequence[ReliabilityBin]) -> float | None:
    """Σ (bin count / total) · |accuracy − mean confidence|; ``None`` for no predictions."""
    total = sum(b.count for b in table)
    if not total:
        return None
    return round(sum(b.count / total * abs(b.accuracy - b.mean_confidence) for b in table), 4)
