"""The multi-corpus quality suite: retrieval, answers, refusals and calibration, leave one corpus out.

    python bench/quality/corpora.py              # which documentation sets are installed (and how to)
    python bench/quality/run.py                  # every installed set; prints the held-out report
    python bench/quality/run.py --sets borg,hatch --show-misses

For each set (bench/quality/corpora.py) the documentation is ingested into an index under bench/.cache
(unchanged files are skipped on later runs), and every question is put through the real service: hybrid
retrieval, the extractive answerer's evidence and its composed answer. Then, **for each set in turn**, the
confidence model is fitted on the *other* sets only, and the held-out set is scored with it: hit@5 and
MRR@10 of an acceptable page, answerable questions answered, same-domain and unrelated negatives refused,
first citation on an acceptable page, and calibration (ECE over the answers, reliability table). The
metrics are computed by shared.evaluation, the same code as `rag-explorer eval`.

``--write-model`` prints the model fitted on all sets, to paste into shared/answering/extractive.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpora import CACHE, CORPORA, Corpus  # noqa: E402
from fit import FEATURES, fit_model, report_set  # noqa: E402

from shared.answering.compose import choose, render  # noqa: E402
from shared.evaluation import dedupe_sources, hit_at_k, load_dataset, match_sources, mrr  # noqa: E402
from shared.service import RagService  # noqa: E402
from shared.settings import Settings  # noqa: E402


def collect(corpus: Corpus, *, quiet: bool = False) -> list[dict[str, Any]]:
    """Ingest the set's documentation (incrementally) and record every question's evidence and answer."""
    settings = Settings(home=CACHE / "index" / corpus.name)
    service = RagService(settings)
    files = corpus.files()
    started = time.perf_counter()
    summary = service.ingest(files, files=files, prune=False)
    if not quiet:
        print(
            f"{corpus.name}: {len(files)} files, {service.store.count_chunks()} chunks "
            f"({summary.files_indexed} indexed now, {summary.files_failed} failed, "
            f"{time.perf_counter() - started:.0f} s)",
            file=sys.stderr,
        )
    dataset = load_dataset(corpus.questions)
    answerer = service.extractive
    records = []
    for item in dataset.items:
        hits = service.retriever.retrieve(item.question, 50)
        sources = dedupe_sources([h.chunk.source for h in hits])
        retrieved = hits[: settings.max_chunks]
        evidence, units = answerer.assess(item.question, retrieved)
        chosen = choose(units, answerer.max_sentences)
        text, citations = render(chosen) if chosen else ("", [])
        first = citations[0].source if citations else None
        rel = match_sources(sources, item.relevant) if item.relevant else {}
        records.append(
            {
                "set": corpus.name,
                "id": item.id,
                "question": item.question,
                "relevant": item.relevant,
                "negative": item.negative or (None if item.relevant else "same-domain"),
                "sources": sources[:10],
                "hit_at_5": hit_at_k(sources, rel, 5) if item.relevant else None,
                "mrr_at_10": mrr(sources, rel, 10) if item.relevant else None,
                "features": evidence.features(),
                "unknown_terms": evidence.unknown_terms,
                "missing_terms": evidence.missing_terms,
                "answer": text,
                "candidates": [
                    {
                        "source": r.chunk.source,
                        "dense": r.dense_score,
                        "lexical": r.lexical_score,
                        "ranks": r.ranks,
                        "best": max((u.score for u in units if u.item is r), default=0.0),
                        "cosine": max((u.cosine for u in units if u.item is r), default=0.0),
                    }
                    for r in retrieved
                ],
                "cited_sources": [c.source for c in citations],
                "first_correct": bool(
                    item.relevant and first is not None and match_sources([first], item.relevant)
                ),
            }
        )
    return records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sets", default=",".join(CORPORA), help="comma-separated set names")
    ap.add_argument("--threshold", type=float, default=Settings().confidence_threshold)
    ap.add_argument("--features", default=",".join(FEATURES), help="features of the confidence model")
    ap.add_argument("--l2", type=float, default=1.0, help="L2 penalty of the logistic fit")
    ap.add_argument("--reuse", action="store_true", help="reuse the recorded evidence (no retrieval)")
    ap.add_argument("--show-misses", action="store_true", help="print every wrong decision")
    ap.add_argument("--json", action="store_true", help="print the per-set reports as JSON")
    ap.add_argument("--write-model", action="store_true", help="print the model fitted on all sets")
    args = ap.parse_args()

    names = [n for n in args.sets.split(",") if n]
    records: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        corpus = CORPORA[name]
        cached = CACHE / f"{name}.records.jsonl"
        if args.reuse and cached.is_file():
            records[name] = [json.loads(x) for x in cached.read_text(encoding="utf-8").splitlines()]
            continue
        if not corpus.root.is_dir():
            print(f"skipped: quality set {name}: not installed; get it with `{corpus.install}`", flush=True)
            continue
        records[name] = collect(corpus)
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_text("".join(json.dumps(r) + "\n" for r in records[name]), encoding="utf-8")

    features = [f for f in args.features.split(",") if f]
    reports = []
    for name, rows in records.items():
        train = [r for other, rs in records.items() if other != name for r in rs]
        model = fit_model(train, features, l2=args.l2) if train else fit_model(rows, features, l2=args.l2)
        reports.append(report_set(name, rows, model, args.threshold, show_misses=args.show_misses))
    pooled = [r for rs in records.values() for r in rs]
    if args.json:
        print(json.dumps([r["summary"] for r in reports], indent=2))
    else:
        print_table(reports, args.threshold, held_out=len(records) > 1)
    if args.write_model:
        model = fit_model(pooled, features, l2=args.l2)
        print(f"fitted on all sets ({len(pooled)} questions): {model}")


def print_table(reports: list[dict[str, Any]], threshold: float, *, held_out: bool) -> None:
    how = "each set scored by a model fitted on the others" if held_out else "in-sample"
    print(f"\nthreshold {threshold:.2f}; {how}")
    cols = ("hit@5", "mrr@10", "answered", "same-dom", "unrelated", "cite@1", "ECE", "colon", "words")
    print(f"{'set':10}" + "".join(f"{c:>11}" for c in cols))
    for rep in reports:
        print(f"{rep['name']:10}" + "".join(f"{rep['row'][c]:>11}" for c in cols))


if __name__ == "__main__":
    np.set_printoptions(precision=3, suppress=True)
    main()
