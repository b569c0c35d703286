"""``/api/v1/tca/`` and ``/api/v1/routing/scores/`` (reads only).

* ``GET /api/v1/tca/?account=&symbol=&venue=&since=``: per-order TCA figures of the
  top-level orders (parents and orders sent straight to a venue) that arrived since
  ``since`` (default: the last 7 days), newest first, at most 500 listed; aggregates per
  venue and per UTC day over all of them, and the slippage distribution per venue. A
  trader sees only the accounts they belong to. ``venue`` keeps the orders that traded
  there (or were sent there) and narrows the aggregates to its fills.
* ``GET /api/v1/routing/scores/?symbol=&venue=``: each enabled venue's score and quality
  figures per enabled instrument (score 1 and no figures where there is no evidence).

A filter value that is malformed or names nothing the user may see is a 400 naming the
field.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.utils import dateparse, timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from orders.access import visible_accounts
from routing import reports, scores

DEFAULT_SINCE = timedelta(days=7)
SLUG = r"^[-a-zA-Z0-9_]{1,32}$"
SYMBOL = r"^[A-Za-z0-9]{1,16}[/-]?[A-Za-z0-9]{1,16}$"
SINCE = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?)?$"


# --- what the answers look like (for OpenAPI; the bodies are built in routing/reports.py)


def _bp(help_text: str = "basis points") -> serializers.CharField:
    return serializers.CharField(allow_null=True, help_text=help_text)


class TcaFiguresSerializer(serializers.Serializer):
    filled_notional = serializers.CharField(help_text="quote currency")
    slippage_bp = _bp("against the arrival mid; positive = cost")
    effective_spread_bp = _bp("2 x distance from the mid at each fill; positive = cost")
    fees = serializers.CharField(help_text="quote currency")
    fees_bp = _bp("of the filled notional")
    markout_1s_bp = _bp("mid 1 s after each fill against its price; positive = good for us")
    markout_5s_bp = _bp("the same, 5 s after")
    markout_60s_bp = _bp("the same, 60 s after")


class TcaAggregateSerializer(TcaFiguresSerializer):
    orders = serializers.IntegerField(help_text="top-level orders with a fill counted here")
    fills = serializers.IntegerField()


class TcaVenueSerializer(TcaAggregateSerializer):
    venue = serializers.CharField()


class TcaDaySerializer(TcaAggregateSerializer):
    day = serializers.DateField(help_text="UTC day of the orders' arrival")


class TcaOrderSerializer(serializers.Serializer):
    order_id = serializers.IntegerField()
    client_order_id = serializers.CharField()
    account = serializers.CharField()
    symbol = serializers.CharField()
    side = serializers.ChoiceField(choices=["buy", "sell"])
    venue = serializers.CharField(allow_null=True, help_text="null: a parent (routed)")
    routed = serializers.BooleanField(help_text="a parent order split by the router")
    status = serializers.CharField()
    quantity = serializers.CharField()
    arrival_at = serializers.DateTimeField()
    arrival_mid = serializers.CharField(allow_null=True, help_text="consolidated mid")
    filled_quantity = serializers.CharField()
    average_price = serializers.CharField(allow_null=True)
    slippage_bp = _bp("against the arrival mid; positive = cost")
    effective_spread_bp = _bp("positive = cost")
    fees = serializers.CharField(help_text="quote currency")
    fees_bp = _bp()
    markout_1s_bp = _bp("positive = good for us")
    markout_5s_bp = _bp("positive = good for us")
    markout_60s_bp = _bp("positive = good for us")
    venues = serializers.ListField(child=serializers.CharField(), help_text="where it filled")


class TcaBinSerializer(serializers.Serializer):
    venue = serializers.CharField()
    lower_bp = serializers.IntegerField(allow_null=True, help_text="null: open below")
    upper_bp = serializers.IntegerField(allow_null=True, help_text="null: open above")
    fills = serializers.IntegerField()


class TcaReportSerializer(serializers.Serializer):
    since = serializers.DateTimeField()
    orders_total = serializers.IntegerField(help_text="orders in the filter (500 listed)")
    orders = TcaOrderSerializer(many=True)
    by_venue = TcaVenueSerializer(many=True)
    by_day = TcaDaySerializer(many=True)
    slippage_histogram = TcaBinSerializer(many=True)


class VenueScoreSerializer(serializers.Serializer):
    venue = serializers.CharField()
    symbol = serializers.CharField()
    score = serializers.CharField(help_text="0..1; 1 = no evidence against the venue")
    children = serializers.IntegerField(help_text="routed children in the window")
    fills = serializers.IntegerField()
    fill_rate = serializers.CharField(allow_null=True)
    reject_rate = serializers.CharField(allow_null=True)
    ack_latency_p50_ms = serializers.IntegerField(allow_null=True)
    slippage_bp = _bp("against the planned price; positive = cost")
    markout_1s_bp = _bp("positive = good for us")
    markout_5s_bp = _bp("positive = good for us")
    updated_at = serializers.DateTimeField(allow_null=True)


class VenueScoresSerializer(serializers.Serializer):
    window_children = serializers.IntegerField()
    window_s = serializers.FloatField()
    scores = VenueScoreSerializer(many=True)


# --- parsing the filters ---------------------------------------------------------------


def _param(name: str, pattern: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, str, description=description, pattern=pattern)


def _bad(field: str, message: str) -> ValidationError:
    return ValidationError({field: [message]})


def parse_since(raw: str | None, *, now: datetime) -> datetime:
    """ISO 8601 date or date-time (no offset: UTC); default ``now`` - 7 days."""
    if raw is None or raw == "":
        return now - DEFAULT_SINCE
    problem = "an ISO 8601 date or date-time, e.g. 2026-01-31 or 2026-01-31T12:00:00Z"
    if not re.fullmatch(SINCE[1:-1], raw):
        raise _bad("since", f"{problem}, not {raw[:40]!r}")
    try:
        when = dateparse.parse_datetime(raw)
        if when is None:
            day = dateparse.parse_date(raw)
            when = None if day is None else datetime.combine(day, time(0), tzinfo=UTC)
    except (ValueError, OverflowError):
        when = None
    if when is None:
        raise _bad("since", f"{problem}, not {raw[:40]!r}")
    if timezone.is_naive(when):
        when = when.replace(tzinfo=UTC)
    try:
        when.astimezone(UTC)
    except OverflowError:
        raise _bad("since", f"{problem}, not {raw[:40]!r}") from None
    return when


def _known(field: str, raw: str | None, choices: list[str]) -> str | None:
    if raw is None or raw == "":
        return None
    if raw not in choices:
        raise _bad(field, f"unknown {field} {raw[:40]!r}")
    return raw


def _symbol(raw: str | None) -> str | None:
    from orders.models import Instrument

    if raw is None or raw == "":
        return None
    wanted = raw.upper().replace("-", "/")
    for symbol in Instrument.objects.values_list("symbol", flat=True):
        if wanted in (symbol, symbol.replace("/", "")):
            return symbol
    raise _bad("symbol", f"unknown symbol {raw[:40]!r}")


def _venue_names(*, enabled_only: bool = False) -> list[str]:
    from venues.models import Venue

    qs = Venue.objects.filter(enabled=True) if enabled_only else Venue.objects.all()
    return list(qs.order_by("name").values_list("name", flat=True))


class TcaView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        parameters=[
            _param("account", SLUG, "an account code you may see"),
            _param("symbol", SYMBOL, "BTC/USDT, BTC-USDT or BTCUSDT"),
            _param("venue", SLUG, "orders that traded at (or were sent to) this venue"),
            _param(
                "since", SINCE, "ISO 8601 date or date-time (UTC if no offset); default 7 days ago"
            ),
        ],
        responses={200: TcaReportSerializer},
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        accounts = visible_accounts(request.user)
        account = params.get("account")
        if account:
            accounts = accounts.filter(code=account)
            if not accounts.exists():
                raise _bad("account", f"unknown account {account[:40]!r}")
        query = reports.TcaFilter(
            accounts=accounts,
            symbol=_symbol(params.get("symbol")),
            venue=_known("venue", params.get("venue"), _venue_names()),
            since=parse_since(params.get("since"), now=timezone.now()),
        )
        return Response(reports.tca_report(query))


class VenueScoresView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        parameters=[
            _param("symbol", SYMBOL, "one instrument (default: every enabled one)"),
            _param("venue", SLUG, "one venue (default: every enabled one)"),
        ],
        responses={200: VenueScoresSerializer},
    )
    def get(self, request: Request) -> Response:
        from orders.models import Instrument

        params = request.query_params
        symbol = _symbol(params.get("symbol"))
        venue = _known("venue", params.get("venue"), _venue_names())
        symbols = (
            [symbol]
            if symbol
            else list(Instrument.objects.filter(enabled=True).values_list("symbol", flat=True))
        )
        venues = [venue] if venue else _venue_names(enabled_only=True)
        body: dict[str, Any] = {
            "window_children": scores.CONFIG.window_children,
            "window_s": scores.CONFIG.window_s,
            "scores": scores.score_rows(symbols, venues),
        }
        return Response(body)
