"""Throughput of the numpy all-MiniLM-L6-v2 embedder (``shared/embeddings/minilm.py``).

Measures chunks/s and tokens/s (tokens the model actually sees, [CLS]/[SEP] included) for

* 256-token chunks (254 word pieces + [CLS] + [SEP]) cut from real text (SciFact corpus), and
* mixed-length chunks (uniformly 8..254 word pieces, same text, fixed seed),

once with the embedder's own scheme (BLAS held to 1 thread, micro-batches spread over ``--threads``
Python threads) and once with BLAS's own threading (no threadpool limit, one forward pass per batch),
so that the ratio is visible in one run. The last line is a machine-readable summary.

    python bench/embed_throughput.py [--data PATH] [--n 256] [--batch-size 32] [--threads 2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from outside_data import scifact  # noqa: E402

from shared.embeddings.minilm import MiniLMEmbedder  # noqa: E402

CONTENT_TOKENS = 254  # + [CLS] + [SEP] = the model's 256-token window


class BlasThreadedEmbedder(MiniLMEmbedder):
    """Same encoder, but BLAS threads each matmul itself: no thread limit, no batch split."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(threads=1, **kwargs)
        self._micro_tokens = 1 << 30  # whole batch in one forward pass

    def _blas_one_thread(self) -> Any:
        return contextlib.nullcontext()


def iter_texts(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            doc = json.loads(line)
            text = f"{doc.get('title', '')}\n{doc.get('text', '')}".strip()
            if text:
                yield text


def make_chunks(emb: MiniLMEmbedder, path: Path, n: int, *, mixed: bool, seed: int = 0) -> list[str]:
    """Cut ``n`` chunks at token boundaries from the corpus (each document is cut separately)."""
    rng = random.Random(seed)
    chunks: list[str] = []
    for text in iter_texts(path):
        spans = emb.token_spans(text)
        pos = 0
        while len(chunks) < n:
            size = rng.randint(8, CONTENT_TOKENS) if mixed else CONTENT_TOKENS
            if pos + size > len(spans):
                break
            chunks.append(text[spans[pos][0] : spans[pos + size - 1][1]])
            pos += size
        if len(chunks) >= n:
            return chunks
    raise SystemExit(f"{path} holds too little text for {n} chunks")


def model_tokens(emb: MiniLMEmbedder, chunks: list[str]) -> int:
    return sum(min(len(emb.token_spans(c)), emb.max_tokens - 2) + 2 for c in chunks)


def _busy_cpu_seconds() -> float | None:
    """CPU seconds all processes spent busy since boot (Linux), to spot a shared, loaded machine."""
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            ticks = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def measure(emb: MiniLMEmbedder, chunks: list[str], repeat: int) -> tuple[float, float | None]:
    """Best-of-``repeat`` seconds to embed ``chunks``, and the share of the machine's CPUs that
    other processes used meanwhile (None where unknown): timings are only meaningful near 0."""
    emb.embed_documents(chunks[: emb.batch_size])  # load weights, warm caches and threads
    best, foreign = float("inf"), None
    for _ in range(repeat):
        busy0, own0, t0 = _busy_cpu_seconds(), time.process_time(), time.perf_counter()
        emb.embed_documents(chunks)
        secs = time.perf_counter() - t0
        busy1, own1 = _busy_cpu_seconds(), time.process_time()
        if secs < best:
            best = secs
            if busy0 is not None and busy1 is not None:
                others = (busy1 - busy0) - (own1 - own0)
                foreign = max(0.0, others) / (secs * (os.cpu_count() or 1))
    return best, foreign


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="a corpus.jsonl [default: SciFact's, in ../shared/data]")
    parser.add_argument("--n", type=int, default=256, help="chunks per measurement")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1, help="best of this many runs")
    args = parser.parse_args()
    if args.data is None:
        args.data = scifact(None, "embed_throughput", ("corpus.jsonl",)) / "corpus.jsonl"
    elif not args.data.is_file():
        parser.error(f"--data {args.data}: no such file")

    ours = MiniLMEmbedder(batch_size=args.batch_size, threads=args.threads)
    blas = BlasThreadedEmbedder(batch_size=args.batch_size)
    sets = {
        "256": make_chunks(ours, args.data, args.n, mixed=False),
        "mixed": make_chunks(ours, args.data, args.n, mixed=True),
    }
    print(f"data={args.data} n={args.n} batch_size={args.batch_size} threads={args.threads}")
    results: dict[tuple[str, str], tuple[float, float]] = {}
    for set_name, chunks in sets.items():
        toks = model_tokens(ours, chunks)
        print(f"[{set_name}] {len(chunks)} chunks, {toks} model tokens ({toks / len(chunks):.0f}/chunk)")
        for emb_name, emb in (("blas1+threads", ours), ("blas-threaded", blas)):
            secs, foreign = measure(emb, chunks, args.repeat)
            results[(set_name, emb_name)] = (len(chunks) / secs, toks / secs)
            note = "" if foreign is None else f"  (other processes: {100 * foreign:.0f}% CPU)"
            print(
                f"  {emb_name:14s} {secs:7.2f} s  {len(chunks) / secs:7.1f} chunks/s  "
                f"{toks / secs:8.0f} tokens/s{note}"
            )
        ratio = results[(set_name, "blas1+threads")][0] / results[(set_name, "blas-threaded")][0]
        print(f"  speed-up of blas1+threads over blas-threaded: {ratio:.2f}x")
    c256, t256 = results[("256", "blas1+threads")]
    cmix, tmix = results[("mixed", "blas1+threads")]
    b256, bmix = results[("256", "blas-threaded")][0], results[("mixed", "blas-threaded")][0]
    print(
        f"chunks_per_s_256={c256:.1f} tokens_per_s={t256:.0f} mixed_chunks_per_s={cmix:.1f} "
        f"mixed_tokens_per_s={tmix:.0f} blas_threaded_chunks_per_s_256={b256:.1f} "
        f"blas_threaded_mixed_chunks_per_s={bmix:.1f}"
    )


if __name__ == "__main__":
    main()
