"""Fit the answer/refuse confidence on the Python-manual development set and report how well it separates.

    apt-get install python3.11-doc          # once: the corpus (not committed)
    python bench/devset/tune_threshold.py [--html-root /usr/share/doc/python3.11/html]

Ingests the pages of corpus_subset.txt into an index under bench/.cache, asks every question of
python_docs_questions.jsonl through the real service (hybrid retrieval + extractive answerer), records
the answerer's evidence (passage similarity, sentence similarity, key-term coverage), then:

* fits a logistic regression on the evidence (answerable = 1, out of scope = 0) and reports 5-fold
  cross-validated accuracy, so the figures are not measured on the data the weights were fitted on;
* scores the *shipped* confidence model (shared.answering.extractive.DEFAULT_CONFIDENCE) at the shipped
  threshold (Settings.confidence_threshold): AUC, answer rate on answerable questions, refusal
  precision/recall on out-of-scope ones, and hit@5 of the expected pages among retrieved sources;
* prints the fitted weights, to copy into DEFAULT_CONFIDENCE when they beat the shipped ones.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from shared.answering.extractive import DEFAULT_CONFIDENCE, ConfidenceModel  # noqa: E402
from shared.service import RagService  # noqa: E402
from shared.settings import Settings  # noqa: E402

HERE = Path(__file__).resolve().parent


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, iters: int = 100) -> np.ndarray:
    """Newton's method for L2-regularised logistic regression; returns [bias, w1, ...]."""
    xb = np.hstack([np.ones((len(x), 1)), x])
    w = np.zeros(xb.shape[1])
    reg = np.eye(len(w)) * l2
    reg[0, 0] = 0.0
    for _ in range(iters):
        p = 1 / (1 + np.exp(-xb @ w))
        grad = xb.T @ (p - y) + reg @ w
        hess = (xb * (p * (1 - p))[:, None]).T @ xb + reg
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def auc(scores: np.ndarray, y: np.ndarray) -> float:
    pos, neg = scores[y == 1], scores[y == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


def decision_report(conf: np.ndarray, y: np.ndarray, threshold: float) -> dict[str, float]:
    answered = conf >= threshold
    refused = ~answered
    oos = y == 0
    return {
        "accuracy": float(((answered & (y == 1)) | (refused & oos)).mean()),
        "answer_rate": float(answered[y == 1].mean()),
        "refusal_precision": float((refused & oos).sum() / max(1, refused.sum())),
        "refusal_recall": float((refused & oos).sum() / max(1, oos.sum())),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--html-root", type=Path, default=Path("/usr/share/doc/python3.11/html"))
    ap.add_argument("--home", type=Path, default=ROOT / "bench" / ".cache" / "devset-python311")
    ap.add_argument(
        "--l2", type=float, default=0.1, help="L2 penalty of the logistic fit (larger = smoother)"
    )
    args = ap.parse_args()
    if not args.html_root.is_dir():
        raise SystemExit(f"{args.html_root} not found: apt-get install python3.11-doc")

    pages = [args.html_root / p for p in (HERE / "corpus_subset.txt").read_text().split()]
    questions = [json.loads(x) for x in (HERE / "python_docs_questions.jsonl").read_text().splitlines() if x]
    settings = Settings(home=args.home)
    service = RagService(settings)
    summary = service.ingest(pages, files=pages)
    print(
        f"corpus: {len(pages)} pages, {service.store.count_chunks()} chunks "
        f"({summary.files_indexed} indexed now, {summary.files_failed} failed)"
    )

    feats, labels, hits, ids, cited_ok = [], [], [], [], []
    for q in questions:
        retrieved = service.retriever.retrieve(q["question"], settings.max_chunks)
        ev, _ = service.extractive.assess(q["question"], retrieved)
        feats.append([ev.passage, ev.sentence, ev.coverage])
        labels.append(0 if q["expected_sources"] is None else 1)
        ids.append(q["id"])
        if q["expected_sources"]:
            expected = {str((args.html_root / p).resolve()) for p in q["expected_sources"]}
            hits.append(any(r.chunk.source in expected for r in retrieved[:5]))
            response = service.extractive.answer(q["question"], retrieved)
            if response.decision == "answer":
                cited_ok.append(any(c.source in expected for c in response.citations))
    x, y = np.array(feats), np.array(labels)
    print(f"questions: {int(y.sum())} answerable, {int((y == 0).sum())} out of scope")
    print(f"retrieval: hit@5 of an expected page {np.mean(hits):.3f}")
    print(
        f"answers: {len(cited_ok)} answerable questions answered at the shipped threshold; "
        f"{np.mean(cited_ok):.3f} of them cite an expected page"
    )
    for name, col in zip(("passage", "sentence", "coverage"), x.T, strict=True):
        print(
            f"  {name:9} answerable mean {col[y == 1].mean():.3f}   "
            f"out-of-scope mean {col[y == 0].mean():.3f}"
        )

    # cross-validated fit (5 folds, stratified by label)
    rng = np.random.default_rng(0)
    folds = np.zeros(len(y), dtype=int)
    for label in (0, 1):
        idx = np.flatnonzero(y == label)
        rng.shuffle(idx)
        folds[idx] = np.arange(len(idx)) % 5
    for l2 in sorted({0.01, 0.1, 1.0, 3.0, args.l2}):
        cv_conf = np.zeros(len(y))
        for f in range(5):
            w = fit_logistic(x[folds != f], y[folds != f], l2=l2)
            cv_conf[folds == f] = 1 / (1 + np.exp(-(w[0] + x[folds == f] @ w[1:])))
        print(
            f"fitted (l2={l2}), 5-fold CV: AUC {auc(cv_conf, y):.3f}  "
            f"at 0.5: {decision_report(cv_conf, y, 0.5)}"
        )

    w = fit_logistic(x, y, l2=args.l2)
    fitted = ConfidenceModel(bias=w[0], passage=w[1], sentence=w[2], coverage=w[3])
    print(
        f"fitted on all (l2={args.l2}): ConfidenceModel(bias={w[0]:.2f}, passage={w[1]:.2f}, "
        f"sentence={w[2]:.2f}, "
        f"coverage={w[3]:.2f})"
    )
    shipped = np.array([DEFAULT_CONFIDENCE(*row) for row in x])
    print(f"shipped model {DEFAULT_CONFIDENCE}:")
    print(f"  AUC {auc(shipped, y):.3f}")
    for t in sorted({0.3, 0.4, 0.5, 0.6, 0.7, settings.confidence_threshold}):
        mark = "  <- shipped threshold" if abs(t - settings.confidence_threshold) < 1e-9 else ""
        print(f"  threshold {t:.2f}: {decision_report(shipped, y, t)}{mark}")
    wrong = [
        f"{i}({c:.2f})"
        for i, c, label in zip(ids, shipped, y, strict=True)
        if (c >= settings.confidence_threshold) != bool(label)
    ]
    print("misjudged at the shipped threshold: " + (", ".join(wrong) or "none"))
    rep = decision_report(shipped, y, settings.confidence_threshold)
    print(
        f"auc={auc(shipped, y):.3f} accuracy={rep['accuracy']:.3f} answer_rate={rep['answer_rate']:.3f} "
        f"refusal_precision={rep['refusal_precision']:.3f} refusal_recall={rep['refusal_recall']:.3f}"
    )
    del fitted


if __name__ == "__main__":
    main()
