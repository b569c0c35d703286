"""The blotter page, its login, its static files, and the admin pages it links to."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest
from django.test import Client

pytestmark = [
    pytest.mark.django_db(transaction=True),
    # WhiteNoise notes that STATIC_ROOT was never collected; the finders serve the files
    pytest.mark.filterwarnings("ignore:No directory at:UserWarning"),
]


def _client(username: str | None) -> Client:
    from django.contrib.auth.models import User

    client = Client()
    if username:
        user = User.objects.get(username=username)
        if user.is_superuser and not user.is_staff:
            user.is_staff = True  # the admin site wants staff
            user.save(update_fields=["is_staff"])
        client.force_login(user)
    return client


def _config(response) -> dict:
    html = response.content.decode()
    start = html.index('id="blotter-config"')
    body = html[html.index(">", start) + 1 : html.index("</script>", start)]
    return json.loads(body)


def test_blotter_anonymous_then_redirected_to_login(users):
    response = _client(None).get("/")
    assert response.status_code == 302 and response["Location"] == "/login/?next=/"


def test_login_with_password_then_blotter(users):
    client = Client()
    page = client.get("/login/")
    assert page.status_code == 200 and b'name="password"' in page.content
    bad = client.post("/login/", {"username": "trader", "password": "nope"})
    assert b"Wrong user name or password" in bad.content
    ok = client.post("/login/", {"username": "trader", "password": "trader-pw-123", "next": "/"})
    assert ok.status_code == 302 and ok["Location"] == "/"
    assert client.get("/").status_code == 200


def test_blotter_for_trader_then_config_and_no_kill_switch(users):
    response = _client("trader").get("/")
    assert response.status_code == 200
    config = _config(response)
    assert config["ws_path"] == "/ws/blotter/" and config["csrf_token"]
    assert config["user"] == {
        "username": "trader",
        "roles": ["trader"],
        "sees_all_accounts": False,
        "can_kill_switch": False,
    }
    assert b'id="kill-switch"' not in response.content
    assert response["Cache-Control"].startswith("max-age=0")


def test_blotter_for_risk_then_kill_switch_control(users):
    response = _client("risk").get("/")
    assert _config(response)["user"]["can_kill_switch"]
    assert b'id="kill-switch"' in response.content


def test_logout_then_back_to_login(users):
    client = _client("trader")
    response = client.post("/logout/")
    assert response.status_code == 302 and response["Location"] == "/login/"
    assert client.get("/").status_code == 302


def test_static_files_served_without_collectstatic(users):
    client = _client(None)
    js = client.get("/static/blotter/blotter.js")
    assert js.status_code == 200
    assert b"window.omsBlotter" in b"".join(js.streaming_content)
    assert client.get("/static/blotter/blotter.css").status_code == 200


def test_admin_order_page_shows_events_timeline_and_fills(users):
    from orders.models import Account, Fill, Instrument, Order, OrderEvent
    from venues.models import Venue

    demo, btc = Account.objects.get(code="DEMO"), Instrument.objects.get(symbol="BTC/USDT")
    venue = Venue.objects.get(name="sim-a")
    order = Order.objects.create(
        client_order_id="adm-1", account=demo, instrument=btc, venue=venue, side="buy",
        type="limit", quantity=D("1"), price=D("10"), status="FILLED",
        filled_quantity=D("1"), request_fingerprint="x", event_sequence=2,
    )  # fmt: skip
    OrderEvent.objects.create(order=order, sequence=1, kind="OrderCreated", source="api",
                              status="PENDING_NEW", payload={"venue": "sim-a"})  # fmt: skip
    OrderEvent.objects.create(order=order, sequence=2, kind="OrderFilled", source="venue",
                              status="FILLED", payload={"trade_id": "t-adm"})  # fmt: skip
    Fill.objects.create(order=order, venue=venue, venue_trade_id="t-adm", account=demo,
                        instrument=btc, side="buy", quantity=D("1"), price=D("10"))  # fmt: skip
    client = _client("admin")
    detail = client.get(f"/admin/orders/order/{order.pk}/change/")
    assert detail.status_code == 200
    html = detail.content.decode()
    assert "Events (timeline)" in html and "OrderFilled" in html and "t-adm" in html
    assert html.index("OrderCreated") < html.index("OrderFilled")
    listing = client.get("/admin/orders/order/", {"status__exact": "FILLED", "q": "adm-1"})
    assert listing.status_code == 200 and "adm-1" in listing.content.decode()
    assert client.get("/admin/orders/fill/", {"q": "t-adm"}).status_code == 200
    assert client.get("/admin/orders/position/").status_code == 200


def test_admin_venues_show_breaker_and_rate_limit_use(users):
    response = _client("admin").get("/admin/venues/venue/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "closed" in html  # the breaker of each venue, read from Redis
    assert "weight 0%" in html


def test_blotter_shows_open_reconciliation_findings_badge_and_panel(users):
    # the page carries the badge, the panel and the script that fills them from the
    # findings API (the same session)
    page = _client("trader").get("/")
    html = page.content.decode()
    assert 'id="recon-badge"' in html and 'id="recon-findings"' in html
    assert "blotter/findings.js" in html
    js = b"".join(_client(None).get("/static/blotter/findings.js").streaming_content)
    assert b"/api/v1/reconciliation/findings/?open=true" in js
    # and that API answers the page's session (no token)
    r = _client("trader").get("/api/v1/reconciliation/findings/", {"open": "true"})
    assert r.status_code == 200 and r.json()["count"] == 0
