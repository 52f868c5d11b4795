"""The BERT encoder of all-MiniLM-L6-v2 in float32 numpy: weights from safetensors, the forward pass,
mean pooling and L2 normalisation (what sentence-transformers computes; :mod:`shared.embeddings.minilm`
wraps it with the tokenizer, micro-batching and threads).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from shared.errors import EmbedderError
from shared.extras import needs_extra

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]

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
class Model:
    word: F32  # (vocab, hidden)
    pos_type: F32  # (max_positions, hidden): position embeddings + token type 0
    ln_g: F32
    ln_b: F32
    layers: tuple[_Layer, ...]
    heads: int
    eps: float


class Workspace:
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


def load_model(model_dir: Path, expected_dimension: int) -> Model:
    with needs_extra("local", "the local embedding model"):
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
    if hidden != expected_dimension or hidden % heads:
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
    return Model(
        word=t("embeddings.word_embeddings.weight"),
        pos_type=np.ascontiguousarray(pos_type, dtype=np.float32),
        ln_g=t("embeddings.LayerNorm.weight"),
        ln_b=t("embeddings.LayerNorm.bias"),
        layers=tuple(layers),
        heads=heads,
        eps=float(config.get("layer_norm_eps", 1e-12)),
    )


def _layer_norm(x: F32, gamma: F32, beta: F32, eps: float, ws: Workspace) -> None:
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


def _gelu(x: F32, ws: Workspace) -> None:
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


def _self_attention(model: Model, layer: _Layer, h: F32, bias: F32, ws: Workspace) -> F32:
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


def forward(model: Model, ids: I64, mask: F32, ws: Workspace) -> F32:
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
