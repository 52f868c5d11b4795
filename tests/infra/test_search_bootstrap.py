"""The custom resource handler that sets up fine-grained access control (run against a fake domain)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

HANDLER = Path(__file__).resolve().parents[2] / "infra" / "custom_resources" / "search_bootstrap" / "index.py"


def load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("search_bootstrap", HANDLER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeDomain:
    def __init__(self, audit_status: int = 200) -> None:
        self.calls: list[tuple[str, str, Any]] = []
        self.audit_status = audit_status

    def __call__(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        self.calls.append((method, path, body))
        if path.endswith("/audit"):
            return self.audit_status, {}
        return (200, {"status": "OK"}) if method != "DELETE" else (404, {})


PROPS = {
    "IndexPattern": "rag-explorer-chunks*",
    "Replicas": "0",
    "ReaderRoleArns": ["arn:aws:iam::1:role/query", "arn:aws:iam::1:role/health"],
    "WriterRoleArns": ["arn:aws:iam::1:role/ingest"],
}


def test_apply_defines_roles_maps_backend_roles_and_puts_the_template() -> None:
    module, fake = load(), FakeDomain()
    module.apply(fake, PROPS)
    calls = {(m, p): b for m, p, b in fake.calls}
    reader = calls[("PUT", "/_plugins/_security/api/roles/rag_explorer_reader")]
    writer = calls[("PUT", "/_plugins/_security/api/roles/rag_explorer_writer")]
    assert reader["index_permissions"][0]["index_patterns"] == ["rag-explorer-chunks*"]
    assert "crud" not in reader["index_permissions"][0]["allowed_actions"]
    assert "crud" in writer["index_permissions"][0]["allowed_actions"]
    assert calls[("PUT", "/_plugins/_security/api/rolesmapping/rag_explorer_reader")] == {
        "backend_roles": ["arn:aws:iam::1:role/health", "arn:aws:iam::1:role/query"]
    }
    assert calls[("PUT", "/_plugins/_security/api/rolesmapping/rag_explorer_writer")] == {
        "backend_roles": ["arn:aws:iam::1:role/ingest"]
    }
    template = calls[("PUT", "/_index_template/rag-explorer")]
    assert template["index_patterns"] == ["rag-explorer-chunks*"]
    assert template["template"]["settings"]["index"]["number_of_replicas"] == 0


def test_audit_logging_is_best_effort() -> None:
    module, fake = load(), FakeDomain(audit_status=400)
    module.apply(fake, PROPS)  # does not raise


def test_a_refused_role_fails_the_deployment() -> None:
    module = load()

    def refusing(method: str, path: str, body: Any) -> tuple[int, Any]:
        return 403, {"message": "no permissions"}

    try:
        module.apply(refusing, PROPS)
    except RuntimeError as exc:
        assert "HTTP 403" in str(exc)
    else:
        raise AssertionError("expected a failure")


def test_remove_deletes_mappings_and_roles_and_ignores_missing_ones() -> None:
    module, fake = load(), FakeDomain()
    module.remove(fake)
    assert [(m, p.rsplit("/", 2)[-2]) for m, p, _ in fake.calls] == [
        ("DELETE", "rolesmapping"),
        ("DELETE", "roles"),
        ("DELETE", "rolesmapping"),
        ("DELETE", "roles"),
    ]


MASTER = "arn:aws:iam::1:role/bootstrap"
ADMIN = "arn:aws:iam::1:role/Admin"
OPERATOR = "arn:aws:iam::1:role/Operator"


class SecurityPlugin:
    """The role mappings of a domain whose master user is mapped to all_access (as the service does)."""

    def __init__(self, all_access: list[str] | None = None) -> None:
        self.mappings: dict[str, dict[str, Any]] = {
            "all_access": {"backend_roles": all_access or [MASTER], "hosts": [], "users": ["admin"]}
        }
        self.calls: list[tuple[str, str]] = []

    def __call__(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        self.calls.append((method, path))
        name = path.rsplit("/", 1)[-1]
        if "/rolesmapping/" in path:
            if method == "GET":
                found = self.mappings.get(name)
                return (200, {name: found}) if found else (404, {"status": "NOT_FOUND"})
            if method == "PUT":
                self.mappings[name] = body
            if method == "DELETE":
                return (200, {}) if self.mappings.pop(name, None) else (404, {})
        return 200, {"status": "OK"}


def test_admins_are_mapped_to_all_access_next_to_the_master_user() -> None:
    module, plugin = load(), SecurityPlugin()
    module.apply(plugin, {**PROPS, "AdminRoleArns": [ADMIN, OPERATOR]})
    assert plugin.mappings["all_access"] == {
        "backend_roles": sorted([ADMIN, MASTER, OPERATOR]),
        "hosts": [],
        "users": ["admin"],
    }


def test_an_admin_dropped_from_the_config_is_unmapped_and_nothing_else() -> None:
    module, plugin = load(), SecurityPlugin([MASTER, ADMIN, OPERATOR, "arn:aws:iam::1:role/ByHand"])
    module.apply(
        plugin, {**PROPS, "AdminRoleArns": [OPERATOR]}, {**PROPS, "AdminRoleArns": [ADMIN, OPERATOR]}
    )
    assert plugin.mappings["all_access"]["backend_roles"] == sorted(
        [MASTER, OPERATOR, "arn:aws:iam::1:role/ByHand"]
    )


def test_no_admins_leaves_all_access_alone_and_an_unchanged_list_writes_nothing() -> None:
    module, plugin = load(), SecurityPlugin()
    module.apply(plugin, PROPS)
    assert not [c for c in plugin.calls if "all_access" in c[1]]
    plugin = SecurityPlugin([MASTER, ADMIN])
    module.apply(plugin, {**PROPS, "AdminRoleArns": [ADMIN]}, {**PROPS, "AdminRoleArns": [ADMIN]})
    assert ("PUT", "/_plugins/_security/api/rolesmapping/all_access") not in plugin.calls


def test_delete_leaves_the_admins_of_a_retained_domain_mapped() -> None:
    module, plugin = load(), SecurityPlugin([MASTER, ADMIN])
    module.apply(plugin, {**PROPS, "AdminRoleArns": [ADMIN]})
    module.remove(plugin)
    assert sorted(plugin.mappings["all_access"]["backend_roles"]) == [ADMIN, MASTER]
    assert "rag_explorer_reader" not in plugin.mappings and "rag_explorer_writer" not in plugin.mappings
