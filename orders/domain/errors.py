"""The OMS's one error hierarchy for what a user or a client can cause.

Every error a client sees derives from ``OmsError``: a stable ``code``, the HTTP status
the API answers with, and the ``field`` (or limit) it is about. The API's exception
handler (``omsweb/errors.py``) turns any of them into the one error envelope; FIX turns
them into rejects. The lifecycle's ``LifecycleError`` derives from it too (a refused
transition is a state conflict).

Venue errors (``venues.base.VenueError``) are not part of it: they are the adapter
contract's normalised answers, which the execution engine turns into order states and
never shows a client as such. Pure: imports nothing from Django.
"""

from __future__ import annotations

from typing import Any


class OmsError(Exception):
    """A user-caused problem. ``code`` is stable for clients; ``status_code`` is HTTP's."""

    status_code = 400
    code = "INVALID"

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        fields: dict[str, list[str]] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.fields = fields or ({field: [message]} if field else {})
        self.extra = extra


class OrderValidationError(OmsError):
    """Bad input: names the field."""

    code = "VALIDATION_ERROR"


class OrderConflict(OmsError):
    """The client order id was used before for a different order."""

    status_code = 409
    code = "CLIENT_ORDER_ID_CONFLICT"


class OrderStateConflict(OmsError):
    """The order (or record) is in a state that does not allow the request."""

    status_code = 409
    code = "ORDER_STATE_CONFLICT"


class OrderRiskDenied(OmsError):
    """Pre-trade risk refused an order or an amend; ``reasons`` lists every failing
    check, ``order`` is the stored (DENIED, or unchanged) order."""

    status_code = 422
    code = "RISK_DENIED"

    def __init__(self, message: str, *, order: Any, reasons: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.order = order
        self.reasons = reasons
