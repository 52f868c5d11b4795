"""What :class:`tests.fakes.s3vectors_server.S3VectorsFake` computes itself, as pure functions: request
validation against the botocore service model, metadata filters, the full-text analyzer and BM25, vector
distances, and the ranking of a ``QueryVectors`` request (vector, full-text or hybrid by RRF).

Semantics from https://docs.aws.amazon.com/AmazonS3/latest/userguide/s3-vectors-metadata-filtering.html and
the QueryVectors reference; where they are silent, see the choices listed in the server's docstring.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.model import Shape, StructureShape

DEFAULT_INDEX_MODE = "ENHANCED"
RRF_K = 60
BM25_K1, BM25_B = 1.2, 0.75
STOP_WORDS = frozenset(
    "a an and are as at be but by for if in into is it no not of on or such that the their then there "
    "these they this to was will with".split()
)

Metadata = dict[str, Any]
Predicate = Callable[[Metadata], bool]


class ServiceError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


def invalid(message: str) -> ServiceError:
    return ServiceError("ValidationException", message)


# --------------------------------------------------------------------------- request validation


def _type_problem(shape: Shape, value: Any) -> str | None:
    kind = shape.type_name
    expected = {
        "string": (str,),
        "blob": (str,),
        "boolean": (bool,),
        "integer": (int,),
        "long": (int,),
        "float": (int, float),
        "double": (int, float),
        "timestamp": (int, float, str),
        "structure": (dict,),
        "map": (dict,),
        "list": (list,),
    }.get(kind, (object,))
    if not isinstance(value, expected) or (isinstance(value, bool) and kind != "boolean"):
        return f"Member must be of type {kind}"
    meta = shape.metadata
    size = len(value) if isinstance(value, str | list | dict) else None
    if size is None and isinstance(value, int | float) and kind != "boolean":
        if "min" in meta and value < meta["min"]:
            return f"Member must have value greater than or equal to {meta['min']}"
        if "max" in meta and value > meta["max"]:
            return f"Member must have value less than or equal to {meta['max']}"
    elif size is not None:
        if "min" in meta and size < meta["min"]:
            return f"Member must have length greater than or equal to {meta['min']}"
        if "max" in meta and size > meta["max"]:
            return f"Member must have length less than or equal to {meta['max']}"
    enum = getattr(shape, "enum", None)
    if enum and value not in enum:
        return f"Member must satisfy enum value set: [{', '.join(enum)}]"
    if kind == "string" and "pattern" in meta:
        try:
            if not re.fullmatch(meta["pattern"], value):
                return f"Member must satisfy regular expression pattern: {meta['pattern']}"
        except re.error:  # \p{L} and friends: Python's re cannot check them
            pass
    return None


def validation_problem(shape: Shape, value: Any, path: str = "") -> str | None:
    """The first way ``value`` breaks ``shape`` (AWS-style message), or None."""
    if shape.metadata.get("document"):
        return None
    problem = _type_problem(shape, value)
    if problem:
        return f"Value at '{path or '/'}' failed to satisfy constraint: {problem}"
    if isinstance(shape, StructureShape):
        members = {n: s for n, s in shape.members.items() if "location" not in s.serialization}
        for name in value:
            if name not in members:
                return f"Unknown member '{path}/{name}': {shape.name} has no member {name!r}"
        for name in shape.required_members:
            if name in members and value.get(name) is None:
                return f"Value null at '{path}/{name}' failed to satisfy constraint: Member must not be null"
        if shape.metadata.get("union") and sum(v is not None for v in value.values()) != 1:
            return f"Value at '{path or '/'}' failed to satisfy constraint: exactly one member must be set"
        children = [(members[n], v, f"{path}/{n}") for n, v in value.items() if v is not None]
    elif shape.type_name == "list":
        children = [(shape.member, v, f"{path}/{i}") for i, v in enumerate(value)]
    elif shape.type_name == "map":
        children = [(shape.value, v, f"{path}/{k}") for k, v in value.items()]
    else:
        return None
    for child_shape, child, child_path in children:
        if problem := validation_problem(child_shape, child, child_path):
            return problem
    return None


# --------------------------------------------------------------------------- filters


def _values(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _kind(value: Any) -> str:
    return (
        "bool"
        if isinstance(value, bool)
        else "number"
        if isinstance(value, int | float)
        else type(value).__name__
    )


def _same(a: Any, b: Any) -> bool:
    return _kind(a) == _kind(b) and a == b


def _primitive(op: str, operand: Any) -> None:
    if not isinstance(operand, str | int | float) or operand is None:
        raise invalid(f"Invalid filter: {op} takes a string, number or boolean, not {json.dumps(operand)}")


_RANGES: dict[str, Callable[[float, float], bool]] = {
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
}


def _operator(key: str, op: str, operand: Any, enhanced: bool) -> Predicate:
    def present(m: Metadata) -> list[Any]:
        return _values(m[key]) if key in m else []

    if op in ("$eq", "$ne"):
        _primitive(op, operand)
        if op == "$eq":
            return lambda m: any(_same(v, operand) for v in present(m))
        return lambda m: not any(_same(v, operand) for v in present(m))
    if op in _RANGES:
        if _kind(operand) != "number":
            raise invalid(f"Invalid filter: {op} takes a number, not {json.dumps(operand)}")
        compare = _RANGES[op]
        return lambda m: any(_kind(v) == "number" and compare(v, operand) for v in present(m))
    if op in ("$in", "$nin"):
        if not isinstance(operand, list) or not operand:
            raise invalid(f"Invalid filter: {op} takes a non-empty array")
        for item in operand:
            _primitive(op, item)
        hit: Predicate = lambda m: any(_same(v, o) for v in present(m) for o in operand)  # noqa: E731
        return hit if op == "$in" else (lambda m: not hit(m))
    if op == "$exists":
        if not isinstance(operand, bool):
            raise invalid("Invalid filter: $exists takes a boolean")
        return lambda m: (key in m) == operand
    if op == "$startsWith" and enhanced:
        if not isinstance(operand, str):
            raise invalid("Invalid filter: $startsWith takes a string")
        return lambda m: any(isinstance(v, str) and v.startswith(operand) for v in present(m))
    raise invalid(f"Invalid filter: unsupported operator {op}")


def _all_of(parts: list[Predicate]) -> Predicate:
    return lambda m: all(p(m) for p in parts)


def _any_of(parts: list[Predicate]) -> Predicate:
    return lambda m: any(p(m) for p in parts)


def compile_filter(document: Any, non_filterable: set[str], *, enhanced: bool) -> Predicate:
    """The predicate of a metadata filter; a malformed filter, or one on a non-filterable key, is a
    ValidationException."""
    if not isinstance(document, dict) or not document:
        raise invalid("Invalid filter: a filter is a non-empty object")
    parts: list[Predicate] = []
    for key, value in document.items():
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise invalid(f"Invalid filter: {key} takes a non-empty array of filters")
            subs = [compile_filter(v, non_filterable, enhanced=enhanced) for v in value]
            parts.append(_all_of(subs) if key == "$and" else _any_of(subs))
        elif key.startswith("$"):
            raise invalid(f"Invalid filter: unsupported operator {key}")
        elif key in non_filterable:
            raise invalid(f"Invalid filter: metadata key {key!r} is non-filterable")
        else:
            conditions = value if isinstance(value, dict) else {"$eq": value}
            if not conditions:
                raise invalid(f"Invalid filter: no condition on {key!r}")
            parts.extend(_operator(key, op, operand, enhanced) for op, operand in conditions.items())
    return _all_of(parts)


# --------------------------------------------------------------------------- full-text search


def _suffix_stem(word: str) -> str:
    for suffix in ("ingly", "edly", "ing", "ies", "ed", "es", "ly", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


try:
    import Stemmer

    _stem: Callable[[str], str] = Stemmer.Stemmer("english").stemWord
except ImportError:  # pragma: no cover - PyStemmer is in the dev environment
    _stem = _suffix_stem


def analyze(text: str) -> list[str]:
    """A simple English analyzer: lowercase, split on non-alphanumerics, stop words out, stemmed."""
    return [_stem(t) for t in re.findall(r"[^\W_]+", text.lower()) if t not in STOP_WORDS]


def bm25_scores(query: str, texts: dict[str, str]) -> dict[str, float]:
    """BM25 (k1=1.2, b=0.75) of every text that contains at least one query term."""
    terms = set(analyze(query))
    docs = {key: analyze(text) for key, text in texts.items()}
    n = len(docs)
    avgdl = (sum(len(d) for d in docs.values()) / n) if n else 1.0
    df = Counter(t for d in docs.values() for t in set(d) if t in terms)
    scores: dict[str, float] = {}
    for key, tokens in docs.items():
        tf = Counter(t for t in tokens if t in terms)
        if not tf:
            continue
        norm = BM25_K1 * (1 - BM25_B + BM25_B * len(tokens) / (avgdl or 1.0))
        scores[key] = sum(
            math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5)) * f * (BM25_K1 + 1) / (f + norm)
            for t, f in tf.items()
        )
    return scores


def _text_of(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return " ".join(value)
    return None


# --------------------------------------------------------------------------- vectors


def vector_values(data: Any, dimension: int, metric: str, what: str) -> list[float]:
    values = (data or {}).get("float32")
    if not isinstance(values, list) or len(values) != dimension:
        got = len(values) if isinstance(values, list) else 0
        raise invalid(f"Invalid {what}: vector must have length {dimension}, but has length {got}")
    if not all(isinstance(x, int | float) and math.isfinite(x) for x in values):
        raise invalid(f"Invalid {what}: vector values must be finite numbers")
    if metric == "cosine" and not any(values):
        raise invalid(f"Invalid {what}: a zero vector has no cosine distance")
    return [float(x) for x in values]


def distance(a: list[float], b: list[float], metric: str) -> float:
    if metric == "cosine":
        dot = sum(x * y for x, y in zip(a, b, strict=True))
        na, nb = math.sqrt(sum(x * x for x in a)), math.sqrt(sum(y * y for y in b))
        return 1.0 - dot / (na * nb) if na and nb else 1.0
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)))


def json_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


@dataclass
class IndexInfo:
    """What a query needs to know of an index: moto's ``GetIndex`` plus the fake's side table."""

    dimension: int
    metric: str
    mode: str = DEFAULT_INDEX_MODE
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def non_filterable(self) -> set[str]:
        return set(self.config.get("nonFilterableMetadataKeys") or [])

    @property
    def text_keys(self) -> dict[str, str]:
        """Full-text searchable key → status (ACTIVE, or BUILDING)."""
        return {
            c["metadataKey"]: c.get("status", "ACTIVE")
            for c in self.config.get("textSearchConfigurations") or []
        }


def check_texts(texts: list[dict[str, Any]], info: IndexInfo, enhanced: bool) -> None:
    if not texts:
        return
    if info.mode != "ENHANCED" or not enhanced:
        raise invalid("Full-text and hybrid search need an index in ENHANCED mode")
    keys = [t["metadataKey"] for t in texts]
    if len(set(keys)) != len(keys):
        raise invalid("Each queryTexts entry must name a different metadataKey")
    for key in keys:
        status = info.text_keys.get(key)
        if status is None:
            raise invalid(f"Metadata key {key!r} has no text search configuration on this index")
        if status != "ACTIVE":
            raise invalid(f"The text search configuration on {key!r} is {status}, not ACTIVE yet")


@dataclass
class Legs:
    """The rankings of one query: the vector leg (keys, nearest first) and one BM25 map per query text."""

    vector: list[str] | None = None
    distances: dict[str, float] = field(default_factory=dict)
    bm25: list[dict[str, float]] = field(default_factory=list)


def search_legs(body: dict[str, Any], info: IndexInfo, vectors: dict[str, Any]) -> Legs:
    """Filter (before the search in ENHANCED mode, after the nearest ``topK`` in CLASSIC), then the
    vector leg and the full-text legs over the candidates."""
    top_k = int(body["topK"])
    texts = body.get("queryTexts") or []
    enhanced = (body.get("queryMode") or info.mode) == "ENHANCED"
    document = body.get("filter")
    keep = compile_filter(document, info.non_filterable, enhanced=enhanced) if document is not None else None
    check_texts(texts, info, enhanced)

    def passes(key: str) -> bool:
        return keep is None or keep(vectors[key].get("metadata") or {})

    candidates = [k for k in vectors if not enhanced or passes(k)]
    legs = Legs()
    if body.get("queryVector") is not None:
        query = vector_values(body["queryVector"], info.dimension, info.metric, "queryVector")
        legs.distances = {k: distance(query, vectors[k]["data"]["float32"], info.metric) for k in candidates}
        ranked = sorted(legs.distances, key=lambda k: (legs.distances[k], k))[:top_k]
        legs.vector = ranked if enhanced else [k for k in ranked if passes(k)]
    for item in texts:
        corpus = {
            key: text
            for key, v in vectors.items()
            if (text := _text_of((v.get("metadata") or {}).get(item["metadataKey"]))) is not None
        }
        scores = bm25_scores(item["text"], corpus)
        legs.bm25.append({k: scores[k] for k in candidates if k in scores})
    return legs


def _by_score(scores: dict[str, float]) -> list[str]:
    return sorted(scores, key=lambda k: (-scores[k], k))


def _fuse(rankings: list[list[str]]) -> dict[str, float]:
    fused: dict[str, float] = {}
    for ranking in rankings:
        for rank, key in enumerate(ranking, start=1):
            fused[key] = fused.get(key, 0.0) + 1.0 / (RRF_K + rank)
    return fused


def rank(body: dict[str, Any], legs: Legs, vectors: dict[str, Any]) -> list[dict[str, Any]]:
    """The ``vectors`` of the QueryVectors response: by distance (vector only), by BM25 (full-text only;
    the sum over several query texts) or by RRF of the ``topK`` best of every leg (hybrid)."""
    top_k = int(body["topK"])
    hybrid = legs.vector is not None and bool(legs.bm25)
    fused: dict[str, float] = {}
    if hybrid:
        text_rankings = [_by_score(s)[:top_k] for s in legs.bm25]
        fused = _fuse([legs.vector or [], *text_rankings])
        order = _by_score(fused)
    elif legs.vector is not None:
        order = legs.vector
    else:
        total: Counter[str] = Counter()
        for leg_scores in legs.bm25:
            total.update(leg_scores)
        order = _by_score(dict(total))
    in_vector_leg = set(legs.vector or [])
    texts = body.get("queryTexts") or []
    out = []
    for key in order[:top_k]:
        item: dict[str, Any] = {"key": key}
        if body.get("returnMetadata"):
            item["metadata"] = vectors[key].get("metadata") or {}
        if body.get("returnDistance") and key in in_vector_leg:
            item["distance"] = legs.distances[key]
        if body.get("returnScores") and legs.bm25:
            matched = [
                {"metadataKey": t["metadataKey"], "score": s[key]}
                for t, s in zip(texts, legs.bm25, strict=True)
                if key in s
            ]
            scores: dict[str, Any] = {"bm25Scores": matched} if matched else {}
            if hybrid:
                scores["fused"] = fused[key]
                if key in in_vector_leg:
                    scores["vectorDistance"] = legs.distances[key]
            item["scores"] = scores
        out.append(item)
    return out
