"""Shared fixtures. Unit tests run with sockets disabled; integration tests may use local servers."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytest_socket import disable_socket, enable_socket

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        if "integration" in parts:
            item.add_marker(pytest.mark.integration)
        elif "infra" in parts:
            item.add_marker(pytest.mark.infra)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if "unit" in Path(str(item.fspath)).parts:
        disable_socket(allow_unix_socket=True)
    else:
        enable_socket()


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture
def hash_embedder():  # type: ignore[no-untyped-def]
    from shared.embeddings.hashing import HashingEmbedder

    return HashingEmbedder(256)
