"""Test helper: mark an order sent as the submit task does, with no venue call."""

from __future__ import annotations

from typing import Any

from orders import engine


def mark_sent(order_id: int, **kwargs: Any) -> Any:
    with engine.marked_sent(order_id, **kwargs) as order:
        return order
