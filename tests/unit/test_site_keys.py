"""`serve`'s gateway and publishable keys (sites): recognised with or without secret keys, throttled per
key and per client address, and the widget's routes open."""

from __future__ import annotations

from local_cli.api_keys import Gateway, KeyRing, RateLimiter, is_open_route
from shared.sites import Site

SITE = Site(name="help", collection="public", origins=["https://help.example.com"], key="pk_test_help_0001")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def gateway(clock: Clock, *, secret: bool = True) -> Gateway:
    return Gateway(
        KeyRing(["sk_secret_1"]) if secret else None,
        RateLimiter(100, 100, clock) if secret else None,
        sites=[SITE],
        site_limiter=RateLimiter(5, 5, clock),
        address_limiter=RateLimiter(1, 2, clock),
    )


def test_publishable_key_is_admitted_and_named_with_or_without_secret_keys() -> None:
    for secret in (True, False):
        admission = gateway(Clock(), secret=secret).admit(
            "POST", "/query", "pk_test_help_0001", "198.51.100.7"
        )
        assert admission.rejection is None and admission.key == "site:help"
    keyed = gateway(Clock())
    assert keyed.admit("POST", "/query", "pk_test_other_001", "198.51.100.7").rejection is not None
    assert keyed.admit("POST", "/search", "sk_secret_1").key == "#1"


def test_publishable_key_is_throttled_per_address_and_per_key() -> None:
    clock = Clock()
    gw = gateway(clock)
    statuses = [gw.admit("POST", "/query", SITE.key, "198.51.100.7").rejection for _ in range(3)]
    assert [r.status if r else 200 for r in statuses] == [200, 200, 429]
    assert statuses[2] is not None and dict(statuses[2].headers)["Retry-After"] == "1"
    assert "from your address" in statuses[2].message
    # other addresses still get through, until the key's own budget (5, burst 5) is spent
    others = [gw.admit("POST", "/query", SITE.key, f"203.0.113.{i}").rejection for i in range(4)]
    assert [r.status if r else 200 for r in others] == [200, 200, 200, 429]
    assert others[3] is not None and "for this publishable key;" in others[3].message
    clock.now += 10
    assert gw.admit("POST", "/query", SITE.key, "198.51.100.7").rejection is None


def test_widget_routes_preflights_and_the_demo_page_need_no_key() -> None:
    gw = gateway(Clock())
    for method, path in [
        ("GET", "/widget.js"),
        ("GET", "/widget/0123456789abcdef.js"),
        ("GET", "/"),
        ("OPTIONS", "/query"),
        ("OPTIONS", "/feedback"),
        ("GET", "/health"),
    ]:
        assert is_open_route(method, path)
        assert gw.admit(method, path, None).rejection is None
    for method, path in [
        ("POST", "/query"),
        ("POST", "/feedback"),
        ("GET", "/health/detailed"),
        ("OPTIONS", "/search"),
    ]:
        assert gw.admit(method, path, None).rejection is not None


def test_gateway_errors_carry_cors_only_for_listed_origins() -> None:
    gw = gateway(Clock())
    assert (
        dict(gw.cors_headers("https://help.example.com"))["Access-Control-Allow-Origin"]
        == "https://help.example.com"
    )
    assert gw.cors_headers("https://evil.example") == ()
    assert gw.cors_headers(None) == ()
