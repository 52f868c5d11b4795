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
    # the ingest function upgrades an older index's mapping before its first write; readers never may
    assert "indices:admin/mapping/put" in writer["index_permissions"][0]["allowed_actions"]
    assert "indices:admin/mapping/put" not in reader["index_permissions"][0]["allowed_actions"]
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


# --- time budget and best-effort delete -------------------------------------------------------------------


class Clock:
    """A fake clock that sleeping advances: no wall-clock time passes in these tests."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Context:
    def __init__(self, remaining_s: float) -> None:
        self.remaining_s = remaining_s

    def get_remaining_time_in_millis(self) -> int:
        return int(self.remaining_s * 1000)


def test_retries_stop_before_the_deadline_and_name_the_last_error() -> None:
    module, clock = load(), Clock()
    timeouts: list[float] = []

    def unreachable(timeout: float) -> tuple[int, Any]:
        timeouts.append(timeout)
        clock.now += timeout  # each attempt waits for its whole timeout
        raise module.TransientError("Name or service not known")

    deadline = clock() + 290  # a 5-minute function, less the margin
    try:
        module.with_retries(unreachable, what="PUT /x", deadline=deadline, clock=clock, sleep=clock.sleep)
    except RuntimeError as exc:
        assert "PUT /x" in str(exc) and "Name or service not known" in str(exc)
    else:
        raise AssertionError("expected a failure")
    assert clock.now <= deadline  # never past it: the real error is reported, not "Task timed out"
    assert all(t <= module.REQUEST_TIMEOUT_S for t in timeouts)
    assert clock.sleeps[:3] == [1, 2, 4]


def test_a_transient_error_then_an_answer() -> None:
    module, clock = load(), Clock()
    answers = iter([module.TransientError("HTTP 503"), (200, {"ok": True})])

    def flaky(timeout: float) -> tuple[int, Any]:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert module.with_retries(
        flaky, what="GET /", deadline=clock() + 60, clock=clock, sleep=clock.sleep
    ) == (
        200,
        {"ok": True},
    )
    assert clock.sleeps == [1]


def event(request_type: str) -> dict[str, Any]:
    return {
        "RequestType": request_type,
        "PhysicalResourceId": "rag-explorer-search-access-rag-explorer-chunks*",
        "ResourceProperties": {**PROPS, "Endpoint": "search-x.eu-west-1.es.amazonaws.com"},
    }


def test_delete_succeeds_when_the_domain_is_gone(monkeypatch: Any) -> None:
    module, clock = load(), Clock()
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    deadlines: list[float] = []

    def gone(endpoint: str, region: str, deadline: float) -> Any:
        deadlines.append(deadline)

        def refused(timeout: float) -> tuple[int, Any]:
            clock.now += 0.5
            raise module.TransientError("connection refused")

        def send(method: str, path: str, body: Any) -> tuple[int, Any]:
            return module.with_retries(refused, what=path, deadline=deadline, clock=clock, sleep=clock.sleep)

        return send

    result = module.on_event(event("Delete"), Context(300), make_sender=gone, clock=clock)
    assert result == {"PhysicalResourceId": "rag-explorer-search-access-rag-explorer-chunks*"}
    assert deadlines == [1000 + module.DELETE_BUDGET_S]  # a short budget, not the whole 5 minutes
    assert clock.now <= deadlines[0]


def test_delete_succeeds_when_the_domain_refuses(monkeypatch: Any) -> None:
    module = load()
    monkeypatch.setenv("AWS_REGION", "eu-west-1")

    def refusing(endpoint: str, region: str, deadline: float) -> Any:
        return lambda method, path, body: (403, {"message": "no permissions"})

    assert module.on_event(event("Delete"), Context(300), make_sender=refusing)["PhysicalResourceId"]


def test_create_fails_with_the_domains_error_within_the_time_left(monkeypatch: Any) -> None:
    module, clock = load(), Clock()
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    deadlines: list[float] = []

    def refusing(endpoint: str, region: str, deadline: float) -> Any:
        deadlines.append(deadline)
        return lambda method, path, body: (403, {"message": "no permissions"})

    try:
        module.on_event(event("Create"), Context(120), make_sender=refusing, clock=clock)
    except RuntimeError as exc:
        assert "HTTP 403" in str(exc) and "no permissions" in str(exc)
    else:
        raise AssertionError("expected a failure")
    assert deadlines == [1000 + 120 - module.MARGIN_S]
