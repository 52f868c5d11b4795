from __future__ import annotations

import math
from pathlib import Path

import pytest

from shared.evaluation import dedupe_sources, hit_at_k, load_qrels, mrr, ndcg_at_k, percentile, recall_at_k


def test_ndcg_hand_computed() -> None:
    ranked = ["d3", "d1", "d9", "d2"]
    rel = {"d1": 1, "d2": 2}
    dcg = 1 / math.log2(3) + 3 / math.log2(5)
    idcg = 3 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(ranked, rel, 10) == pytest.approx(dcg / idcg)
    assert ndcg_at_k(ranked, rel, 1) == 0.0
    assert ndcg_at_k(["d2", "d1"], rel, 10) == pytest.approx(1.0)
    assert ndcg_at_k(ranked, {}, 10) == 0.0


def test_recall_mrr_hit() -> None:
    ranked = ["a", "b", "c", "d"]
    rel = {"c": 1, "z": 1, "b": 0}
    assert recall_at_k(ranked, rel, 2) == 0.0
    assert recall_at_k(ranked, rel, 3) == 0.5
    assert mrr(ranked, rel) == pytest.approx(1 / 3)
    assert mrr(ranked, rel, k=2) == 0.0
    assert hit_at_k(ranked, rel, 3) == 1.0 and hit_at_k(ranked, rel, 2) == 0.0


def test_dedupe_and_percentile() -> None:
    assert dedupe_sources(["a", "b", "a", "c", "b"]) == ["a", "b", "c"]
    assert percentile([5, 1, 3, 2, 4], 50) == 3
    assert percentile(list(range(1, 101)), 95) == 95
    assert percentile([], 50) == 0.0


def test_load_qrels_skips_header(tmp_path: Path) -> None:
    p = tmp_path / "q.tsv"
    p.write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n1\td2\t2\n2\td3\t1\n")
    assert load_qrels(str(p)) == {"1": {"d1": 1, "d2": 2}, "2": {"d3": 1}}
