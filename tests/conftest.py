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


class FakeLambdaContext:
    """The parts of ``LambdaContext`` that handlers and Powertools read."""

    function_name = "rag-explorer-test"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:rag-explorer-test"
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    log_group_name = "/aws/lambda/rag-explorer-test"
    log_stream_name = "2024/01/01/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()
