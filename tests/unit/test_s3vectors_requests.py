"""The S3 Vectors requests as data, pinned against botocore's service model: a member the model does not
have, a missing required one or a value out of its range fails here, not in production."""

from __future__ import annotations

from typing import Any

import botocore.session
import numpy as np
import pytest
from botocore.validate import ParamValidator

from shared.chunking import embedding_text
from shared.models import Chunk, SearchFilter
from shared.stores import s3vectors_requests as rq

MODEL = botocore.session.get_session().get_service_model("s3vectors")


def problems(operation: str, request: dict[str, Any]) -> str:
    report = ParamValidator().validate(request, MODEL.operation_model(operation).input_shape)
    return report.generate_report() if report.has_errors() else ""


def chunk(**update: Any) -> Chunk:
    base = Chunk(
        chunk_id="c1",
        source="s3://docs/admin/keys.md",
        title="API keys",
        text="Rotate the key from the console.",
        heading_path=["Keys", "Rotation"],
        position=2,
        page=4,
        content_hash="h1",
        tags=["security", "admin"],
        n_tokens=9,
        url="https://docs.example.com/admin/keys#rotation",
        collection="help",
    )
    return base.model_copy(update=update)


VECTOR = np.linspace(-1, 1, 8).astype(np.float32)
FILTERS = [
    None,
    SearchFilter(),
    SearchFilter(tags=["a"]),
    SearchFilter(tags=["a", "b"], collection="help", source_prefix="s3://docs/ad"),
    SearchFilter(source_prefix="keys"),
]


def test_the_validator_itself_catches_a_field_the_model_does_not_have() -> None:
    request = rq.query_request("bucket-1", "index-1", top_k=3, vector=list(VECTOR))
    assert problems("QueryVectors", {**request, "hybrid": True})
    assert problems("QueryVectors", {k: v for k, v in request.items() if k != "topK"})


@pytest.mark.parametrize("filters", FILTERS)
@pytest.mark.parametrize("legs", ["vector", "text", "both"])
def test_query_requests_match_the_model(filters: SearchFilter | None, legs: str) -> None:
    request = rq.query_request(
        "bucket-1",
        "index-1",
        top_k=500,
        vector=list(VECTOR) if legs != "text" else None,
        text="how do I rotate " * 200 if legs != "vector" else None,
        filters=filters,
    )
    assert problems("QueryVectors", request) == ""
    assert request["topK"] == rq.MAX_TOP_K
    if legs != "vector":
        assert len(request["queryTexts"][0]["text"]) <= rq.MAX_QUERY_TEXT_CHARS
        assert request["queryTexts"][0]["metadataKey"] == rq.TEXT_KEY


def test_a_query_needs_a_leg() -> None:
    with pytest.raises(ValueError, match="vector, a text or both"):
        rq.query_request("bucket-1", "index-1", top_k=3)


def test_write_read_list_and_create_requests_match_the_model() -> None:
    c = chunk()
    record = rq.vector_record(
        c.chunk_id, VECTOR, rq.chunk_metadata(c, embedding_text(c), "2026-12-05T09:00:00Z")
    )
    manifest = rq.manifest_record(embedder="hash:8", dimension=8, version="v1")
    bucket = {"vectorBucketName": "bucket-1", "indexName": "index-1"}
    assert problems("PutVectors", {**bucket, "vectors": [record, manifest]}) == ""
    assert problems("DeleteVectors", rq.keys_request("bucket-1", "index-1", ["c1"])) == ""
    assert problems("GetVectors", rq.keys_request("bucket-1", "index-1", ["c1"], returnData=True)) == ""
    assert problems("ListVectors", rq.list_request("bucket-1", "index-1", "token")) == ""
    assert problems("CreateIndex", rq.create_index_request("bucket-1", "index-1", dimension=384)) == ""


def test_the_index_definition() -> None:
    definition = rq.index_definition(dimension=384)
    assert definition["dimension"] == 384 and definition["distanceMetric"] == "cosine"
    config = definition["metadataConfiguration"]
    assert config["nonFilterableMetadataKeys"] == ["text", "chunk"]
    assert config["textSearchConfigurations"] == [{"metadataKey": "text", "language": "en"}]
    assert len(config["nonFilterableMetadataKeys"]) <= rq.MAX_NON_FILTERABLE_KEYS


def test_chunk_metadata_round_trips_every_field() -> None:
    for c in (chunk(), chunk(title=None, tags=[], page=None, url=None, heading_path=[], source="notes.txt")):
        metadata = rq.chunk_metadata(c, embedding_text(c), "2026-12-05T09:00:00Z")
        assert rq.chunk_from_metadata(c.chunk_id, metadata) == c
        assert metadata["text"] == embedding_text(c)
        assert ("tags" in metadata) == bool(c.tags) and ("folders" in metadata) == ("/" in c.source)
        assert rq.metadata_problem(metadata) is None
        assert len(metadata) <= rq.MAX_METADATA_KEYS


def test_folders_and_prefixes() -> None:
    assert rq.folders_of("s3://b/a/x.md") == ["s3:/", "s3://", "s3://b/", "s3://b/a/"]
    assert rq.folders_of("/home/u/x.md") == ["/", "/home/", "/home/u/"]
    assert rq.folders_of("x.md") == []
    assert rq.prefix_folder("s3://b/a/x") == "s3://b/a/" and rq.prefix_folder("x") is None
    # every source under a prefix carries the prefix's folder, so the service-side filter loses nothing
    for source in ("s3://b/a/x.md", "s3://b/a/xy/z.md"):
        assert rq.prefix_folder("s3://b/a/x") in rq.folders_of(source)


def test_filters_translate_to_the_filter_language() -> None:
    assert rq.filter_document(None) is None and rq.filter_document(SearchFilter()) is None
    assert rq.filter_document(SearchFilter(tags=["a"])) == {"tags": {"$eq": "a"}}
    assert rq.filter_document(SearchFilter(tags=["a", "b"], collection="help", source_prefix="/d/k")) == {
        "$and": [
            {"tags": {"$eq": "a"}},
            {"tags": {"$eq": "b"}},
            {"collection": {"$eq": "help"}},
            {"folders": {"$eq": "/d/"}},
        ]
    }
    assert rq.filter_document(SearchFilter(source_prefix="keys")) is None  # no folder: checked on results
    assert rq.needs_exact_prefix_check(SearchFilter(source_prefix="/d/k"))
    assert not rq.needs_exact_prefix_check(SearchFilter(source_prefix="/d/"))
    assert not rq.needs_exact_prefix_check(SearchFilter(tags=["a"])) and not rq.needs_exact_prefix_check(None)


def test_metadata_over_the_limits_is_explained() -> None:
    many = chunk(tags=[f"tag-{i:03d}-" + "x" * 90 for i in range(30)])
    problem = rq.metadata_problem(rq.chunk_metadata(many, "t", "now"))
    assert problem is not None and "filterable metadata" in problem and "2048" in problem
    huge = chunk(text="word " * 10_000)
    problem = rq.metadata_problem(rq.chunk_metadata(huge, embedding_text(huge), "now"))
    assert problem is not None and "40960" in problem


def test_query_text_is_cut_at_a_word() -> None:
    text = rq.query_text("rotate " * 400)
    assert len(text) <= rq.MAX_QUERY_TEXT_CHARS and text.endswith("rotate")
    assert rq.query_text("  a\n b ") == "a b"


def test_manifest_reads_back_and_ignores_junk() -> None:
    record = rq.manifest_record(embedder="hash:8", dimension=8, version="v1")
    assert record["key"] == rq.MANIFEST_KEY and record["data"]["float32"][0] == 1.0
    assert rq.read_manifest(record["metadata"]) == {
        "template_version": rq.TEMPLATE_VERSION,
        "embedder": "hash:8",
        "dimension": 8,
        "version": "v1",
    }
    assert rq.read_manifest({"rag_explorer": "{not json"}) is None and rq.read_manifest(None) is None
    assert rq.cosine_from_distance(0.25) == 0.75 and rq.cosine_from_distance(3.0) == -1.0
