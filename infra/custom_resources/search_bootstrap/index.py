"""Custom resource handler: fine-grained access control and index defaults of the OpenSearch domain.

Runs as the domain's master user (its execution role is the domain's ``MasterUserARN``) and, through the
security plugin's REST API, signed with SigV4:

- defines two roles, ``rag_explorer_reader`` (search, count, cluster health, create the index if missing)
  and ``rag_explorer_writer`` (all of that plus writes), limited to the app's index pattern;
- maps the Lambda execution roles to them as backend roles (``ReaderRoleArns``, ``WriterRoleArns``);
- maps the administrators' IAM roles (``AdminRoleArns``) to ``all_access``, next to whatever is mapped
  there already (the master user): people who may use Dashboards and change index settings;
- puts an index template with the replica count and slow-log thresholds for the app's indices;
- turns audit logging on (REST layer, failed logins and missing privileges).

Requests are retried with backoff, never past the function's remaining time (less a margin to report),
so a failure is reported with the domain's own error. Delete is best-effort: it removes the functions'
role mappings and roles (the domain itself may be retained) and leaves the administrators mapped, so that
a retained domain keeps people who can administer it; a domain that is gone or unreachable does not fail
the deletion. Only the Python standard library and the botocore that the Lambda runtime ships are used,
so the asset needs no bundling.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

log = logging.getLogger()
log.setLevel(logging.INFO)

READER_ROLE = "rag_explorer_reader"
WRITER_ROLE = "rag_explorer_writer"
ADMIN_ROLE = "all_access"
TEMPLATE_NAME = "rag-explorer"
REQUEST_TIMEOUT_S = 30.0  # one HTTP request to the domain

# method, path, body -> (status, parsed body)
Sender = Callable[[str, str, Any], tuple[int, Any]]


def role_definitions(index_pattern: str) -> dict[str, dict[str, Any]]:
    """The two security-plugin roles, limited to ``index_pattern``."""
    read_actions = [
        "read",
        "indices_monitor",
        "indices:admin/get",
        "indices:admin/mappings/get",
        "create_index",
    ]
    return {
        READER_ROLE: {
            "description": "RAG Explorer query and health functions: search the app's index",
            "cluster_permissions": ["cluster_composite_ops_ro", "cluster_monitor"],
            "index_permissions": [{"index_patterns": [index_pattern], "allowed_actions": read_actions}],
        },
        WRITER_ROLE: {
            "description": "RAG Explorer ingest function: index and delete chunks of the app's index",
            "cluster_permissions": ["cluster_composite_ops", "cluster_monitor"],
            "index_permissions": [
                {
                    "index_patterns": [index_pattern],
                    # mapping/put: an index created by an older release gets the fields a newer one
                    # adds (shared/stores/opensearch_queries.py, the template version) before its first write
                    "allowed_actions": [
                        *read_actions,
                        "crud",
                        "indices:admin/refresh*",
                        "indices:admin/mapping/put",
                    ],
                }
            ],
        },
    }


def index_template(index_pattern: str, replicas: int) -> dict[str, Any]:
    return {
        "index_patterns": [index_pattern],
        "priority": 100,
        "template": {
            "settings": {
                "index": {
                    "number_of_replicas": replicas,
                    "search.slowlog.threshold.query.warn": "2s",
                    "search.slowlog.threshold.query.info": "1s",
                    "indexing.slowlog.threshold.index.warn": "5s",
                    "indexing.slowlog.threshold.index.info": "2s",
                }
            }
        },
    }


AUDIT_PATCH = [
    {"op": "add", "path": "/config/enabled", "value": True},
    {"op": "add", "path": "/config/audit/enable_rest", "value": True},
    {"op": "add", "path": "/config/audit/enable_transport", "value": False},
    {
        "op": "add",
        "path": "/config/audit/disabled_rest_categories",
        "value": ["AUTHENTICATED", "GRANTED_PRIVILEGES"],
    },
]


def _check(status: int, body: Any, what: str, *, ok: tuple[int, ...] = (200, 201)) -> None:
    if status not in ok:
        raise RuntimeError(f"{what} failed with HTTP {status}: {json.dumps(body)[:500]}")


def map_admins(send: Sender, admins: list[str], previous: list[str] | None = None) -> None:
    """Map ``admins`` to ``all_access`` and unmap ``previous`` ones no longer listed, keeping every other
    backend role, user and host of the mapping (the master user's, or one added by hand)."""
    previous = previous or []
    if not admins and not previous:
        return
    path = f"/_plugins/_security/api/rolesmapping/{ADMIN_ROLE}"
    status, body = send("GET", path, None)
    _check(status, body, f"role mapping {ADMIN_ROLE}", ok=(200, 404))
    current = body.get(ADMIN_ROLE, {}) if status == 200 and isinstance(body, dict) else {}
    existing = list(current.get("backend_roles", []))
    kept = [role for role in existing if role not in previous or role in admins]
    backend_roles = sorted(set(kept) | set(admins))
    if backend_roles == sorted(existing):
        return
    mapping = {
        "backend_roles": backend_roles,
        "hosts": list(current.get("hosts", [])),
        "users": list(current.get("users", [])),
    }
    _check(*send("PUT", path, mapping), f"role mapping {ADMIN_ROLE}")


def apply(send: Sender, props: dict[str, Any], old_props: dict[str, Any] | None = None) -> None:
    pattern = props["IndexPattern"]
    for name, body in role_definitions(pattern).items():
        _check(*send("PUT", f"/_plugins/_security/api/roles/{name}", body), f"role {name}")
    mappings = {READER_ROLE: props.get("ReaderRoleArns", []), WRITER_ROLE: props.get("WriterRoleArns", [])}
    for name, arns in mappings.items():
        body = {"backend_roles": sorted(arns)}
        _check(*send("PUT", f"/_plugins/_security/api/rolesmapping/{name}", body), f"role mapping {name}")
    map_admins(send, list(props.get("AdminRoleArns", [])), list((old_props or {}).get("AdminRoleArns", [])))
    template = index_template(pattern, int(props.get("Replicas", 1)))
    _check(*send("PUT", f"/_index_template/{TEMPLATE_NAME}", template), "index template")
    status, body = send("PATCH", "/_plugins/_security/api/audit", AUDIT_PATCH)
    if status not in (200, 201):  # audit logging is an extra: never fail the deployment for it
        log.warning("could not enable audit logging (HTTP %s): %s", status, json.dumps(body)[:500])


def remove(send: Sender) -> None:
    for name in (READER_ROLE, WRITER_ROLE):
        for kind in ("rolesmapping", "roles"):
            status, body = send("DELETE", f"/_plugins/_security/api/{kind}/{name}", None)
            if status not in (200, 404):
                log.warning("could not delete %s %s (HTTP %s): %s", kind, name, status, body)


class TransientError(RuntimeError):
    """An attempt that may succeed later: HTTP 5xx or 429, a connection error, a timeout."""


def with_retries(
    attempt: Callable[[float], tuple[int, Any]],
    *,
    what: str,
    deadline: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[int, Any]:
    """Call ``attempt(timeout)`` until it answers, backing off (1, 2, 4 ... 30 s), never past ``deadline``
    (a ``clock()`` value): the function reports the real error instead of Lambda's "Task timed out"."""
    last, attempts = "no attempt was made", 0
    while (left := deadline - clock()) > 1:
        attempts += 1
        try:
            return attempt(min(REQUEST_TIMEOUT_S, left))
        except TransientError as exc:
            last = str(exc)
            log.info("%s: %s, retrying", what, exc)
        pause = min(2 ** (attempts - 1), 30, deadline - clock() - 1)
        if pause <= 0:
            break
        sleep(pause)
    raise RuntimeError(
        f"{what}: no answer from the domain within the time left ({attempts} attempts); last error: {last}"
    )


def signed_sender(endpoint: str, region: str, deadline: float) -> Sender:  # pragma: no cover - needs AWS
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    credentials = botocore.session.get_session().get_credentials()

    def send(method: str, path: str, body: Any) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        url = f"https://{endpoint}{path}"

        def attempt(timeout: float) -> tuple[int, Any]:
            request = AWSRequest(
                method=method, url=url, data=data, headers={"Content-Type": "application/json"}
            )
            SigV4Auth(credentials.get_frozen_credentials(), "es", region).add_auth(request)
            prepared = urllib.request.Request(url, data=data, method=method, headers=dict(request.headers))
            try:
                with urllib.request.urlopen(prepared, timeout=timeout) as response:  # noqa: S310 - https only
                    return response.status, json.loads(response.read() or b"{}")
            except urllib.error.HTTPError as exc:
                payload = exc.read()
                if exc.code < 500 and exc.code != 429:
                    return exc.code, json.loads(payload) if payload.startswith(b"{") else payload.decode()
                raise TransientError(f"HTTP {exc.code}") from None
            except (urllib.error.URLError, TimeoutError) as exc:
                raise TransientError(str(exc)) from None

        return with_retries(attempt, what=f"{method} {path}", deadline=deadline)

    return send


#: kept for the provider framework to report the result to CloudFormation
MARGIN_S = 10.0
#: a deletion spends at most this long on the domain: it is best-effort (the domain may be gone)
DELETE_BUDGET_S = 60.0

SenderFactory = Callable[[str, str, float], Sender]


def on_event(
    event: dict[str, Any],
    context: Any,
    make_sender: SenderFactory = signed_sender,
    clock: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Create and Update apply the access settings and fail with the domain's own error. Delete is
    best-effort: an unreachable or deleted domain, or a refused request, still lets the stack delete."""
    props = event["ResourceProperties"]
    physical_id = event.get("PhysicalResourceId") or f"rag-explorer-search-access-{props['IndexPattern']}"
    log.info("%s %s", event["RequestType"], physical_id)
    deadline = clock() + context.get_remaining_time_in_millis() / 1000 - MARGIN_S
    if event["RequestType"] == "Delete":
        send = make_sender(
            props["Endpoint"], os.environ["AWS_REGION"], min(deadline, clock() + DELETE_BUDGET_S)
        )
        try:
            remove(send)
        except Exception as exc:  # best-effort: the domain may be gone
            log.warning("left the role mappings as they are (the domain may be gone): %s", exc)
    else:
        send = make_sender(props["Endpoint"], os.environ["AWS_REGION"], deadline)
        apply(send, props, event.get("OldResourceProperties"))
    return {"PhysicalResourceId": physical_id}
