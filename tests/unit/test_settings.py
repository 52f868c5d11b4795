from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from shared.errors import ConfigError
from shared.settings import Settings, load_settings, save_settings_file


def test_defaults(tmp_path: Path) -> None:
    s = load_settings({"home": str(tmp_path)}, env={})
    assert s.chunk_tokens == Settings.model_fields["chunk_tokens"].default
    assert s.store_path == tmp_path / "index"


def test_precedence_flags_over_env_over_file_over_defaults(tmp_path: Path) -> None:
    (tmp_path / "settings.json").write_text(json.dumps({"chunk_tokens": 150, "candidates": 40, "rrf_k": 30}))
    env = {"RAG_EXPLORER_HOME": str(tmp_path), "RAG_EXPLORER_CANDIDATES": "45", "RAG_EXPLORER_RRF_K": "20"}
    s = load_settings({"rrf_k": 10, "max_chunks": None}, env=env)
    assert s.home == tmp_path
    assert s.chunk_tokens == 150  # file
    assert s.candidates == 45  # env beats file
    assert s.rrf_k == 10  # flag beats env
    assert s.max_chunks == Settings.model_fields["max_chunks"].default  # None flags are ignored


def test_invalid_values_give_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="chunk_tokens"):
        load_settings({"home": str(tmp_path)}, env={"RAG_EXPLORER_CHUNK_TOKENS": "lots"})
    with pytest.raises(ConfigError, match="chunk_overlap_tokens must be smaller"):
        load_settings({"home": str(tmp_path), "chunk_tokens": 40, "chunk_overlap_tokens": 40}, env={})


def test_unknown_keys_in_file_are_rejected(tmp_path: Path) -> None:
    (tmp_path / "settings.json").write_text(json.dumps({"chunk_tokenz": 1}))
    with pytest.raises(ConfigError, match="chunk_tokenz"):
        load_settings({"home": str(tmp_path)}, env={})


def test_corrupt_settings_file(tmp_path: Path) -> None:
    (tmp_path / "settings.json").write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read settings file"):
        load_settings({"home": str(tmp_path)}, env={})


def test_save_settings_file_merges_validates_and_is_private(tmp_path: Path) -> None:
    save_settings_file(tmp_path, {"chunk_tokens": 120})
    path = save_settings_file(tmp_path, {"candidates": 30})
    assert json.loads(path.read_text()) == {"chunk_tokens": 120, "candidates": 30}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(ConfigError, match="chunk_tokens: Input should be greater"):
        save_settings_file(tmp_path, {"chunk_tokens": 5})
    assert json.loads(path.read_text())["chunk_tokens"] == 120  # nothing written on a bad value
    with pytest.raises(ConfigError) as raised:  # the value itself (it may be a secret) is never shown
        save_settings_file(tmp_path, {"endpoint": "ftp://sk-secret-value"})
    assert "sk-secret-value" not in str(raised.value) and raised.value.__cause__ is None


def test_answer_providers_from_env_are_comma_separated_and_checked(tmp_path: Path) -> None:
    haiku = "bedrock:anthropic.claude-3-haiku-20240307-v1:0"
    env = {"RAG_EXPLORER_ANSWER_PROVIDERS": f"openai:gpt-4o-mini, {haiku},extractive"}
    s = load_settings({"home": str(tmp_path)}, env=env)
    assert s.answer_providers == [
        "openai:gpt-4o-mini",
        "bedrock:anthropic.claude-3-haiku-20240307-v1:0",
        "extractive",
    ]
    assert load_settings({"home": str(tmp_path)}, env={}).answer_providers == ["extractive"]
    with pytest.raises(ConfigError, match="unknown answer provider 'gpt4'"):
        load_settings({"home": str(tmp_path)}, env={"RAG_EXPLORER_ANSWER_PROVIDERS": "gpt4"})


def test_sites_and_collections_validate_and_save_as_json(tmp_path: Path) -> None:
    site = {"name": "help", "origins": ["https://Help.Example.com/"], "key": "pk_live_abcdefgh"}
    path = save_settings_file(tmp_path, {"sites": json.dumps([site])})
    saved = json.loads(path.read_text())
    assert saved["sites"][0]["origins"] == ["https://help.example.com"]  # normalised, stored as JSON
    assert load_settings({"home": tmp_path}, env={}).sites[0].key == "pk_live_abcdefgh"
    for bad, why in [
        ({"sites": [{**site, "origins": ["https://*.example.com"]}]}, "not an origin"),
        ({"sites": [{**site, "origins": ["https://example.com/help"]}]}, "not an origin"),
        ({"sites": [{**site, "key": "sk_live_abcdefgh"}]}, "pk_"),
        ({"sites": [site, {**site, "name": "other"}]}, "share a key"),
        ({"collections": {"docs": {"handoff": "webhook:http://hooks.example.com/x"}}}, "HTTPS only"),
        ({"collections": {"docs": {"handoff": "javascript:alert(1)"}}}, "https:// URL"),
        ({"collections": {"Docs!": {}}}, "collection name"),
        ({"collections": "{not json"}, "not JSON"),
    ]:
        with pytest.raises(ConfigError, match=why):
            load_settings(bad, env={})
    env = {"RAG_EXPLORER_COLLECTIONS": '{"docs": {"handoff": "mailto:help@example.com"}}'}
    assert load_settings({}, env=env).collection("docs").handoff == "mailto:help@example.com"
    assert load_settings({}, env=env).collection("other").handoff is None


def test_vector_store_is_an_alias_of_store(tmp_path: Path) -> None:
    """The deployment plan's VECTOR_STORE=opensearch|chroma; RAG_EXPLORER_STORE wins when both are set."""
    home = {"home": str(tmp_path)}
    os_env = {"VECTOR_STORE": "opensearch", "RAG_EXPLORER_OPENSEARCH_URL": "https://search.example.com"}
    assert load_settings(home, env=os_env).store == "opensearch"
    assert load_settings(home, env={**os_env, "RAG_EXPLORER_STORE": "chroma"}).store == "chroma"
    assert load_settings(home, env={"VECTOR_STORE": ""}).store == "chroma"
    with pytest.raises(ConfigError, match="store"):
        load_settings(home, env={"VECTOR_STORE": "pinecone"})
