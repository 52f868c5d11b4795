"""Fitting the confidence model and scoring a held-out set with it (used by bench/quality/run.py)."""

from __future__ import annotations

import re
import statistics
from typing import Any

import numpy as np

from shared.answering.extractive import ConfidenceModel
from shared.evaluation import QuestionResult, summarize
from shared.text import split_blocks

FEATURES = ("passage", "sentence", "coverage", "unknown", "agree", "focus")


def label(row: dict[str, Any]) -> int:
    """1 when answering would be right: the question is answerable and the first citation is right."""
    return int(bool(row["relevant"]) and row["first_correct"])


def fit_model(
    rows: list[dict[str, Any]], features: list[str] | tuple[str, ...], *, l2: float
) -> ConfidenceModel:
    """Fit on rows from several sets, each set weighted equally (a large set must not dominate)."""
    sets = sorted({r["set"] for r in rows})
    x = np.array([[r["features"][f] for f in features] for r in rows])
    y = np.array([label(r) for r in rows], dtype=float)
    sizes = {s: sum(1 for r in rows if r["set"] == s) for s in sets}
    weight = np.array([len(rows) / (len(sets) * sizes[r["set"]]) for r in rows])
    # weighted fit: repeat the Newton step with sample weights
    xb = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(xb.shape[1])
    reg = np.eye(len(w)) * l2
    reg[0, 0] = 0.0
    for _ in range(100):
        p = 1 / (1 + np.exp(-xb @ w))
        grad = xb.T @ (weight * (p - y)) + reg @ w
        hess = (xb * (weight * p * (1 - p))[:, None]).T @ xb + reg
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return ConfidenceModel(
        bias=round(float(w[0]), 3),
        floor=ConfidenceModel().floor,
        weights=tuple((f, round(float(v), 3)) for f, v in zip(features, w[1:], strict=True)),
    )


_CITATION_MARKS = re.compile(r"(?:\s*\[\d+\])+\s*$")


def ends_on_colon(answer: str) -> bool:
    """The answer's last words are a lead-in ("...write the following: [1]") with nothing after it."""
    return _CITATION_MARKS.sub("", answer).rstrip().endswith(":")


def prose_words(answer: str) -> int:
    return sum(len(answer[s:e].split()) for kind, s, e in split_blocks(answer) if kind == "prose")


def report_set(
    name: str, rows: list[dict[str, Any]], model: ConfidenceModel, threshold: float, *, show_misses: bool
) -> dict[str, Any]:
    results = []
    answers = []
    for r in rows:
        conf = model.score(r["features"])
        answered = conf >= threshold and bool(r["answer"])
        if answered:
            answers.append(r["answer"])
        results.append(
            QuestionResult(
                id=r["id"],
                question=r["question"],
                out_of_scope=not r["relevant"],
                negative=r["negative"] if not r["relevant"] else None,
                sources=r["sources"],
                mrr_at_10=r["mrr_at_10"],
                hit_at_5=r["hit_at_5"],
                decision="answer" if answered else "refuse",
                confidence=round(conf, 4),
                cited_sources=r["cited_sources"] if answered else [],
                correct=answered and label(r) == 1,
                latency_ms=0.0,
            )
        )
        if show_misses and (answered != bool(label(r))):
            kind = "answered" if answered else "refused"
            what = "oos" if not r["relevant"] else ("wrong page" if not r["first_correct"] else "right page")
            print(f"  {name}/{r['id']} {kind} ({what}) conf {conf:.2f} {r['features']} "
                  f"unknown={r['unknown_terms']} :: {r['question'][:90]}")  # fmt: skip
    s = summarize(results, dataset=name, target="held-out")
    oos = [r for r in results if r.out_of_scope]

    def refused(kind: str) -> str:
        group = [r for r in oos if r.negative == kind]
        return f"{sum(r.decision == 'refuse' for r in group)}/{len(group)}"

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.3f}"

    row = {
        "hit@5": fmt(s.hit_at_5),
        "mrr@10": fmt(s.mrr_at_10),
        "answered": fmt(s.answer_rate),
        "same-dom": refused("same-domain"),
        "unrelated": refused("unrelated"),
        "cite@1": fmt(s.citation_accuracy),
        "ECE": fmt(s.ece),
        "colon": str(sum(ends_on_colon(a) for a in answers)),
        "words": str(int(statistics.median([prose_words(a) for a in answers]))) if answers else "-",
    }
    return {"name": name, "summary": s.model_dump(by_alias=True), "row": row}
