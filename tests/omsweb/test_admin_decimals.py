"""Admin pages show quantities and prices as written, not padded to 12 places (issue 12,
item 9: the order list read ``0.001000000000``)."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest

from tests.orders.engine_harness import fill, installed

pytestmark = pytest.mark.django_db(transaction=True)

PADDED = re.compile(r"\d\.\d{12}(?!\d)")  # a decimal with all 12 of its column's places


@pytest.fixture
def harness(transactional_db, monkeypatch):
    yield from installed(monkeypatch)


def test_every_admin_list_and_detail_then_no_decimal_padded_to_12_places(harness, client):
    # Arrange: an order filled in part (order, events, fill, position), a limit change
    from django.contrib import admin
    from django.contrib.auth.models import User

    from risk.defaults import ensure_default_limits

    ensure_default_limits()
    harness.venue.on_submit(fill("0.004", "60000"))
    order = harness.submit(quantity=Decimal("0.01"))
    harness.run_queued()
    client.force_login(User.objects.create_superuser("boss", password="boss-pw-123"))
    pages = []
    for model, model_admin in admin.site._registry.items():
        meta = model._meta
        pages.append(f"/admin/{meta.app_label}/{meta.model_name}/")
        first = model_admin.get_queryset(client.request().wsgi_request).first()
        if first is not None:
            pages.append(f"/admin/{meta.app_label}/{meta.model_name}/{first.pk}/change/")
    # Act / Assert
    for page in pages:
        r = client.get(page)
        assert r.status_code == 200, (page, r.status_code)
        html = r.content.decode()
        assert not PADDED.findall(html), (page, PADDED.findall(html)[:5])
    order_page = client.get(f"/admin/orders/order/{order.pk}/change/").content.decode()
    assert "0.004" in order_page and "60000" in order_page
    assert "0.01" in client.get("/admin/orders/order/").content.decode()
