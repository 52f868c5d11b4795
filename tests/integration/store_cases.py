"""The chunks the remote store suites (OpenSearch, S3 Vectors) index first: two pages, three chunks,
tags that overlap so a filter on every tag differs from a filter on any."""

from __future__ import annotations

from shared.models import Chunk


def make_chunks() -> list[Chunk]:
    rows = [
        ("c1", "/d/keys.md", "Rotate the API key from the console.", ["security"], 1),
        ("c2", "/d/keys.md", "Old keys expire one hour after rotation.", ["security", "admin"], None),
        ("c3", "/d/billing.md", "Invoices are emailed every month.", ["billing"], None),
    ]
    return [
        Chunk(
            chunk_id=cid,
            source=src,
            title="T",
            text=text,
            heading_path=["H", "I"],
            position=i,
            content_hash=f"hash-{src}",
            tags=tags,
            page=page,
            n_tokens=7,
        )
        for i, (cid, src, text, tags, page) in enumerate(rows)
    ]
