"""The risk API through real HTTP (uvicorn) against real PostgreSQL: limits, the kill
switch, who may change them, the 422 denial envelope, and concurrent orders."""

from __future__ import annotations

import threading

import pytest

from tests.conftest import limit_order

pytestmark = pytest.mark.django_db(transaction=True)


def engage(client, state="HALTED", scope="global", reason="test", **extra):
    return client.post(
        "/api/v1/risk/kill-switch/", {"scope": scope, "state": state, "reason": reason, **extra}
    )


def new_limit(client, **body):
    data = {"scope": "account", "account": "DEMO", "kind": "max_position", "value": "5"}
    data.update(reason="test", **body)
    return client.post("/api/v1/risk/limits/", data)


# --- limits -------------------------------------------------------------------------------


def test_risk_creates_and_changes_a_limit_with_audit(api):
    risk = api("risk")
    r = new_limit(risk, scope="account_symbol", symbol="BTC/USDT", value="0.5")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["scope"] == "account_symbol" and body["account"] == "DEMO"
    assert body["symbol"] == "BTC/USDT" and body["value"] == "0.5"
    assert body["updated_by"] == "risk" and body["reason"] == "test"
    r = risk.patch(f"/api/v1/risk/limits/{body['id']}/", {"value": "0.75", "reason": "wider"})
    assert r.status_code == 200 and r.json()["value"] == "0.75"
    from risk.models import RiskLimitChange

    changes = list(
        RiskLimitChange.objects.filter(limit_id=body["id"])
        .order_by("id")
        .values_list("action", "old_value", "new_value", "changed_by_name", "reason", "source")
    )
    assert [c[0] for c in changes] == ["created", "updated"]
    assert changes[1][3:] == ("risk", "wider", "api")
    assert str(changes[1][1].normalize()) == "0.5" and str(changes[1][2].normalize()) == "0.75"


def test_limit_change_applies_to_the_next_order_over_http(api):
    trader = api("trader")
    assert trader.post("/api/v1/orders/", limit_order(quantity="0.02")).status_code == 201
    r = new_limit(api("risk"), kind="max_order_quantity", value="0.01")
    assert r.status_code == 201
    r = trader.post("/api/v1/orders/", limit_order(quantity="0.02", price="50001.00"))
    assert r.status_code == 422
    assert r.json()["error"]["reasons"][0]["check"] == "MAX_ORDER_QUANTITY"


def test_trader_reads_global_and_own_limits_only_and_cannot_change_them(api):
    risk, trader = api("risk"), api("trader")
    hedge = new_limit(risk, account="HEDGE").json()
    demo = new_limit(risk, account="DEMO").json()
    ids = {row["id"] for row in trader.get("/api/v1/risk/limits/?limit=500").json()["results"]}
    assert demo["id"] in ids and hedge["id"] not in ids
    assert trader.get(f"/api/v1/risk/limits/{hedge['id']}/").status_code == 404
    for r in (
        new_limit(trader, account="DEMO", kind="max_open_orders"),
        trader.patch(f"/api/v1/risk/limits/{demo['id']}/", {"value": "99", "reason": "mine"}),
    ):
        assert r.status_code == 403, r.text
        assert r.json()["error"]["code"] == "PERMISSION_DENIED"
    from risk.models import RiskLimit

    assert RiskLimit.objects.get(pk=demo["id"]).value == 5


BAD_LIMITS = [
    ("negative value", {"value": "-1"}, "value"),
    ("non-numeric value", {"value": "lots"}, "value"),
    ("infinite value", {"value": "Infinity"}, "value"),
    ("fractional count", {"kind": "max_open_orders", "value": "1.5"}, "value"),
    ("missing scope", {"scope": None}, "scope"),
    ("unknown scope", {"scope": "desk"}, "scope"),
    ("account scope without account", {"account": None}, "account"),
    ("global scope with an account", {"scope": "global"}, "account"),
    ("symbol scope without symbol", {"scope": "symbol", "account": None}, "symbol"),
    ("unknown account", {"account": "NOPE"}, "account"),
    ("unknown kind", {"kind": "max_fun"}, "kind"),
    ("missing reason", {"reason": None}, "reason"),
    ("blank reason", {"reason": "  "}, "reason"),
    ("breach action on a non-breach kind", {"kind": "max_open_orders", "breach_action": "HALTED"},
     "breach_action"),
    ("unknown field", {"colour": "red"}, "colour"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "change", "field"), BAD_LIMITS, ids=[b[0] for b in BAD_LIMITS])
def test_invalid_limit_then_400_naming_the_field(api, case, change, field):
    body = {"scope": "account", "account": "DEMO", "kind": "max_position", "value": "5"}
    body["reason"] = "test"
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None}
    r = api("risk").post("/api/v1/risk/limits/", body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == field, r.json()


def test_same_limit_twice_then_409_pointing_at_it(api):
    risk = api("risk")
    first = new_limit(risk).json()
    r = new_limit(risk, value="6")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "LIMIT_EXISTS"
    assert r.json()["error"]["limit_id"] == first["id"]


def test_patch_negative_or_without_reason_then_400(api):
    risk = api("risk")
    limit = new_limit(risk).json()
    r = risk.patch(f"/api/v1/risk/limits/{limit['id']}/", {"value": "-2", "reason": "x"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "value"
    r = risk.patch(f"/api/v1/risk/limits/{limit['id']}/", {"value": "2"})
    assert r.status_code == 400 and r.json()["error"]["field"] == "reason"


# --- kill switch and the 422 envelope ----------------------------------------------------


def test_halt_then_orders_denied_with_envelope_and_trader_cannot_release(api):
    risk, trader = api("risk"), api("trader")
    # Act: risk engages
    r = engage(risk, reason="runaway strategy")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "HALTED" and r.json()["previous_state"] == "ACTIVE"
    assert r.json()["changed_by"] == "risk" and r.json()["cancel_sweep"] is True
    # Assert: the next order is denied, stored, and answered with every reason
    r = trader.post("/api/v1/orders/", limit_order(client_order_id="k-1"))
    assert r.status_code == 422
    body = r.json()
    assert body["error"]["code"] == "RISK_DENIED"
    assert body["error"]["reasons"] == [
        {
            "check": "TRADING_STATE",
            "message": "TRADING_STATE: global is HALTED (runaway strategy)",
            "limit": None,
            "value": "HALTED",
        }
    ]
    assert body["order"]["status"] == "DENIED" and body["order"]["client_order_id"] == "k-1"
    assert "HALTED" in body["order"]["reason"]
    # a trader can neither release it nor engage anything
    for state in ("ACTIVE", "REDUCING"):
        r = engage(trader, state=state)
        assert r.status_code == 403 and r.json()["error"]["code"] == "PERMISSION_DENIED"
    assert trader.get("/api/v1/risk/trading-state/").json()["global"]["state"] == "HALTED"
    # risk releases: orders go again
    r = engage(risk, state="ACTIVE", reason="strategy fixed")
    assert r.status_code == 200 and r.json()["previous_state"] == "HALTED"
    assert trader.post("/api/v1/orders/", limit_order(client_order_id="k-2")).status_code == 201


def test_trading_state_lists_scopes_with_who_and_why(api):
    risk = api("risk")
    engage(risk, scope="venue", target="sim-a", reason="venue incident")
    engage(risk, scope="account", target="HEDGE", state="REDUCING", reason="hedge review")
    engage(risk, scope="account", target="DEMO", symbol="BTC/USDT", state="REDUCING", reason="x")
    states = risk.get("/api/v1/risk/trading-state/").json()
    assert states["global"]["state"] == "ACTIVE"
    by_target = {(s["scope"], s["target"], s["symbol"]): s for s in states["states"]}
    venue = by_target[("venue", "sim-a", None)]
    assert venue["state"] == "HALTED" and venue["reason"] == "venue incident"
    assert venue["changed_by"] == "risk" and venue["changed_by_role"] == "risk"
    assert by_target[("account", "DEMO", "BTC/USDT")]["state"] == "REDUCING"
    # a trader sees the venue's state and their own account's, not other accounts'
    seen = {(s["scope"], s["target"]) for s in api("trader").get(
        "/api/v1/risk/trading-state/").json()["states"]}  # fmt: skip
    assert ("venue", "sim-a") in seen and ("account", "DEMO") in seen
    assert ("account", "HEDGE") not in seen
    # admin may change it too
    assert engage(api("admin"), scope="venue", target="sim-a", state="ACTIVE").status_code == 200


BAD_KILLS = [
    ("unknown scope", {"scope": "desk"}, "scope"),
    ("unknown state", {"state": "PAUSED"}, "state"),
    ("missing reason", {"reason": None}, "reason"),
    ("venue without target", {"scope": "venue"}, "target"),
    ("unknown venue", {"scope": "venue", "target": "nowhere"}, "target"),
    ("unknown account", {"scope": "account", "target": "NOPE"}, "target"),
    ("global with target", {"target": "sim-a"}, "target"),
    ("symbol on a venue scope", {"scope": "venue", "target": "sim-a", "symbol": "BTC/USDT"},
     "symbol"),
    ("unknown symbol narrowing", {"scope": "account", "target": "DEMO", "symbol": "X/Y"}, "symbol"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "change", "field"), BAD_KILLS, ids=[b[0] for b in BAD_KILLS])
def test_invalid_kill_switch_then_400_naming_the_field(api, case, change, field):
    body = {"scope": "global", "state": "HALTED", "reason": "test", **change}
    body = {k: v for k, v in body.items() if v is not None}
    r = api("risk").post("/api/v1/risk/kill-switch/", body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["field"] == field
    from risk.models import TradingState

    assert not TradingState.objects.filter(state="HALTED").exists()


def test_cancel_allowed_while_halted(api):
    trader = api("trader")
    order = trader.post("/api/v1/orders/", limit_order(client_order_id="c-h")).json()
    engage(api("risk"), scope="account", target="DEMO")
    r = trader.post(f"/api/v1/orders/{order['id']}/cancel/")
    assert r.status_code == 202 and r.json()["status"] == "CANCELED"


# --- concurrency ------------------------------------------------------------------------


def _race(api, bodies: list[dict]) -> list[int]:
    """POST every body at the same moment from its own thread and connection."""
    clients = [api("trader") for _ in bodies]
    for c in clients:  # warm the connections so the requests start together
        c.get("/api/v1/risk/trading-state/")
    barrier = threading.Barrier(len(bodies))
    codes: list[int] = [0] * len(bodies)

    def run(i: int) -> None:
        barrier.wait()
        codes[i] = clients[i].post("/api/v1/orders/", bodies[i]).status_code

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return codes


@pytest.mark.parametrize(
    ("kind", "value", "quantity"),
    [("max_open_orders", "1", "0.01"), ("max_position", "0.01", "0.01"),
     ("max_gross_exposure", "600", "0.01")],
)  # fmt: skip
def test_concurrent_orders_cannot_both_pass_a_limit_only_one_fits(api, kind, value, quantity):
    # Arrange: room for exactly one of the orders
    assert new_limit(api("risk"), kind=kind, value=value).status_code == 201
    bodies = [
        limit_order(client_order_id=f"race-{kind}-{i}", quantity=quantity, price=f"{60000 + i}.00")
        for i in range(8)
    ]
    # Act
    codes = _race(api, bodies)
    # Assert
    assert sorted(codes) == [201] + [422] * 7, codes
    from orders.models import Order

    assert (
        Order.objects.filter(client_order_id__startswith="race-").exclude(status="DENIED").count()
        == 1
    )
