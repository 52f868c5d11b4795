"""The support desk's backends against real local servers: interactions in DynamoDB (moto server) through
the query Lambda with real API Gateway events, interactions in SQLite, and webhook tickets over real
HTTPS (a local server with a certificate made for the test)."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import http.server
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import boto3
import pytest

from shared.adapters.interactions_dynamodb import DynamoInteractionStore, expires_at
from shared.adapters.webhook import SIGNATURE_HEADER, WebhookSender
from shared.errors import DeliveryError, StoreError
from shared.feedback import Interaction
from shared.interactions_sqlite import SqliteInteractionStore
from tests.aws import REGION, load_handler, moto_server, set_aws_env

pytestmark = pytest.mark.integration
EVENTS = Path(__file__).resolve().parents[1] / "events"


def interaction(n: int = 1, **changes: Any) -> Interaction:
    values: dict[str, Any] = {
        "interaction_id": f"{n:032x}",
        "created_at": "2026-12-05T08:00:00.000Z",
        "collection": "public",
        "question": "How do I rotate my API key?",
        "decision": "answer",
        "answer": "Open the console and choose Regenerate key. [1]",
        "confidence": 0.8,
    }
    return Interaction(**{**values, **changes})


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_server() as url:
        yield url


def make_table(url: str) -> str:
    client = boto3.client("dynamodb", endpoint_url=url, region_name=REGION)
    name = f"interactions-{id(client)}"
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "interaction_id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": name, "AttributeType": "S"} for name in ("interaction_id", "day", "created_at")
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_day",
                "KeySchema": [
                    {"AttributeName": "day", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def test_dynamodb_store_round_trip_overwrite_and_ttl(
    moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    set_aws_env(monkeypatch, tmp_path, moto_url)
    client = boto3.client("dynamodb", endpoint_url=moto_url, region_name=REGION)
    store = DynamoInteractionStore(make_table(moto_url), client=client, retention_days=30)
    assert store.get("0" * 32) is None
    store.put(interaction())
    store.put(interaction(helpful=False, comment="not it"))
    got = store.get(f"{1:032x}")
    assert got is not None and got.helpful is False and got.comment == "not it"
    item = client.get_item(TableName=store.table, Key={"interaction_id": {"S": f"{1:032x}"}})["Item"]
    created = datetime.datetime(2026, 12, 5, 8, tzinfo=datetime.UTC)
    assert int(item["expires_at"]["N"]) == int((created + datetime.timedelta(days=30)).timestamp())
    assert int(item["expires_at"]["N"]) == expires_at("2026-12-05T08:00:00.000Z", 30)
    for n, day in enumerate(["2026-12-01", "2026-12-03", "2026-12-03", "2026-12-04"], 2):
        store.put(
            interaction(n, created_at=f"{day}T09:0{n}:00.000Z", collection="public" if n % 2 else "other")
        )
    period = store.scan(since="2026-12-02T00:00:00.000Z", until="2026-12-04T00:00:00.000Z")
    assert [i.interaction_id for i in period] == [f"{3:032x}", f"{4:032x}"]
    assert [i.interaction_id for i in store.scan(since="2026-12-01T00:00:00.000Z", collection="other")] == [
        f"{2:032x}",
        f"{4:032x}",
    ]
    missing = DynamoInteractionStore("no-such-table", client=client)
    with pytest.raises(StoreError, match="ResourceNotFoundException"):
        missing.put(interaction())


def test_query_lambda_records_interactions_and_feedback_in_dynamodb(
    moto_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, lambda_context: Any
) -> None:
    set_aws_env(monkeypatch, tmp_path, moto_url)
    table = make_table(moto_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", moto_url)
    monkeypatch.setenv("RAG_EXPLORER_INTERACTIONS_TABLE", table)
    monkeypatch.setenv(
        "RAG_EXPLORER_SITES",
        json.dumps(
            [
                {
                    "name": "help",
                    "collection": "public",
                    "origins": ["https://help.example.com"],
                    "key_id": "k7x2m9q4z1",
                }
            ]
        ),
    )
    monkeypatch.setenv(
        "RAG_EXPLORER_COLLECTIONS", json.dumps({"public": {"handoff": "mailto:support@example.com"}})
    )
    handler = load_handler("query")
    query = json.loads((EVENTS / "query_publishable_event.json").read_text())
    result = handler.lambda_handler(query, lambda_context)
    assert result["statusCode"] == 200, result["body"]
    body = json.loads(result["body"])
    assert body["decision"] == "refuse"  # nothing ingested in this home
    assert body["handoff"]["kind"] == "mailto" and body["handoff"]["url"].startswith("mailto:support@")
    assert result["multiValueHeaders"]["Access-Control-Allow-Origin"] == ["https://help.example.com"]
    store = DynamoInteractionStore(table, client=boto3.client("dynamodb", endpoint_url=moto_url))
    stored = store.get(body["interaction_id"])
    assert stored is not None and stored.site == "help" and stored.collection == "public"

    feedback = json.loads((EVENTS / "feedback_event.json").read_text())
    feedback["body"] = json.dumps(
        {"interaction_id": body["interaction_id"], "helpful": False, "handoff": True}
    )
    result = handler.lambda_handler(feedback, lambda_context)
    assert result["statusCode"] == 200, result["body"]
    assert json.loads(result["body"])["handoff"]["url"].startswith("mailto:support@example.com?subject=")
    stored = store.get(body["interaction_id"])
    assert stored is not None and stored.helpful is False and stored.handoff_kind == "mailto"


def test_sqlite_store_is_shared_by_two_connections(tmp_path: Path) -> None:
    path = tmp_path / "home" / "interactions.sqlite3"
    writer, reader = SqliteInteractionStore(path), SqliteInteractionStore(path)
    writer.put(interaction(1))
    writer.put(interaction(2, decision="refuse", answer=None))
    writer.put(interaction(1, helpful=True))
    first = reader.get(f"{1:032x}")
    assert first is not None and first.helpful is True
    assert reader.count() == 2 and reader.get("f" * 32) is None


# --------------------------------------------------------------------------- webhook over HTTPS


def _certificate(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


class Hook(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        headers = {k.lower(): v for k, v in self.headers.items()}
        type(self).received.append((self.path, headers, body))
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "https://127.0.0.1:9/elsewhere")
        else:
            self.send_response(500 if self.path == "/broken" else 202)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def https_hook(tmp_path: Path) -> Iterator[tuple[str, ssl.SSLContext]]:
    cert, key = _certificate(tmp_path)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    server.socket = server_ctx.wrap_socket(server.socket, server_side=True)
    Hook.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    client_ctx = ssl.create_default_context(cafile=str(cert))
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}", client_ctx
    finally:
        server.shutdown()
        server.server_close()


def test_webhook_ticket_is_signed_and_posted_over_https(https_hook: tuple[str, ssl.SSLContext]) -> None:
    base, ctx = https_hook
    sender = WebhookSender(lambda: "whsec_test", ssl_context=ctx, clock=lambda: 1_760_000_000)
    sender.send(f"{base}/tickets", {"question": "How do I rotate my API key?", "interaction_id": "ab" * 16})
    path, headers, body = Hook.received[0]
    assert path == "/tickets" and json.loads(body)["question"] == "How do I rotate my API key?"
    timestamp, mac = (part.split("=", 1)[1] for part in headers[SIGNATURE_HEADER.lower()].split(","))
    expected = hmac.new(b"whsec_test", f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert timestamp == "1760000000" and hmac.compare_digest(mac, expected)


def test_webhook_failures_are_delivery_errors(https_hook: tuple[str, ssl.SSLContext]) -> None:
    base, ctx = https_hook
    sender = WebhookSender(ssl_context=ctx)
    with pytest.raises(DeliveryError, match="500"):
        sender.send(f"{base}/broken", {})
    with pytest.raises(DeliveryError, match="302"):  # a redirect is not followed
        sender.send(f"{base}/moved", {})
    assert [p for p, _, _ in Hook.received] == ["/broken", "/moved"]
    with pytest.raises(DeliveryError, match="https"):
        sender.send(base.replace("https://", "http://") + "/tickets", {})
    with pytest.raises(DeliveryError, match="could not be reached"):  # the default trust store: not our cert
        WebhookSender().send(f"{base}/tickets", {})
