"""Input validation and output shapes for the order API (DESIGN section 9)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers

from omsweb.openapi import ErrorSerializer
from omsweb.serializers import StrictSerializer
from omsweb.strict_input import MAX_DECIMAL_TEXT, POSITIVE_DECIMAL_SCHEMA, plain_decimal
from orders.models import Order, OrderType, Side, TimeInForce
from orders.shapes import dec, event_to_dict, fill_to_dict, order_to_dict, position_to_dict

CLIENT_ORDER_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,32}\Z"  # \Z: no trailing newline
MAX_DIGITS = 30
MAX_PLACES = 12


@extend_schema_field(POSITIVE_DECIMAL_SCHEMA)
class PositiveDecimalField(serializers.Field):
    """A decimal given as a string: > 0, below 10^18, at most 12 places."""

    default_error_messages = {
        "invalid": 'must be a decimal number given as a string, e.g. "0.5"',
        "positive": "must be greater than zero",
        "places": f"at most {MAX_PLACES} decimal places",
        "digits": f"at most {MAX_DIGITS} digits",
    }

    def to_internal_value(self, data: Any) -> Decimal:
        if isinstance(data, str) and len(data) > MAX_DECIMAL_TEXT:
            self.fail("digits")
        value = plain_decimal(data)
        if value is None:
            self.fail("invalid")
        if value <= 0:
            self.fail("positive")
        exponent = value.normalize().as_tuple().exponent
        if isinstance(exponent, int) and -exponent > MAX_PLACES:
            self.fail("places")
        if value >= Decimal(10) ** (MAX_DIGITS - MAX_PLACES):
            self.fail("digits")
        return value

    def to_representation(self, value: Decimal) -> str | None:
        return dec(value)


class OrderCreateSerializer(StrictSerializer):
    client_order_id = serializers.RegexField(
        CLIENT_ORDER_ID_PATTERN,
        required=False,
        trim_whitespace=False,  # "abc\n" is refused, not stored as "abc"
        error_messages={
            "invalid": "1-32 characters from A-Z a-z 0-9 . _ : -",
        },
    )
    account = serializers.CharField(max_length=32)
    symbol = serializers.CharField(max_length=32)
    side = serializers.ChoiceField(choices=Side.values)
    type = serializers.ChoiceField(choices=OrderType.values)
    quantity = PositiveDecimalField()
    price = PositiveDecimalField(required=False, allow_null=True)
    time_in_force = serializers.ChoiceField(choices=TimeInForce.values, required=False)
    venue = serializers.CharField(max_length=32, required=False, allow_null=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        kind, price = attrs.get("type"), attrs.get("price")
        if kind == OrderType.MARKET and price is not None:
            raise serializers.ValidationError({"price": ["a market order takes no price"]})
        if kind == OrderType.LIMIT and price is None:
            raise serializers.ValidationError({"price": ["a limit order needs a price"]})
        return attrs


@extend_schema_field({"type": "string", "nullable": True, "enum": [None]})
class NoPriceField(serializers.Field):
    """Documents a market order's price: absent or null."""


class LimitOrderCreateSerializer(OrderCreateSerializer):
    """A limit order, as the schema shows it: it needs a price (``OrderCreateSerializer``
    parses both kinds)."""

    type = serializers.ChoiceField(choices=[OrderType.LIMIT.value])
    price = PositiveDecimalField()


class MarketOrderCreateSerializer(OrderCreateSerializer):
    """A market order, as the schema shows it: no price."""

    type = serializers.ChoiceField(choices=[OrderType.MARKET.value])
    price = NoPriceField(required=False)


ORDER_CREATE_SCHEMA = PolymorphicProxySerializer(
    component_name="OrderCreate",
    serializers={
        OrderType.LIMIT.value: LimitOrderCreateSerializer,
        OrderType.MARKET.value: MarketOrderCreateSerializer,
    },
    resource_type_field_name="type",
)


class OrderAmendSerializer(StrictSerializer):
    openapi_rules = {"minProperties": 1}
    quantity = PositiveDecimalField(required=False)
    price = PositiveDecimalField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if not attrs:
            raise serializers.ValidationError({"quantity": ["give a quantity or a price"]})
        return attrs


class CancelAllSerializer(StrictSerializer):
    account = serializers.CharField(max_length=32, required=False)
    symbol = serializers.CharField(max_length=32, required=False)
    venue = serializers.CharField(max_length=32, required=False)


class CancelSerializer(StrictSerializer):
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True)


class _Out(serializers.Serializer):
    builder: Any = None

    def to_representation(self, instance: Any) -> dict[str, Any]:
        return type(self).builder(instance)


class OrderSerializer(_Out):
    builder = staticmethod(order_to_dict)
    id = serializers.IntegerField()
    client_order_id = serializers.CharField(help_text="the client's id, unique per account")
    venue_client_order_id = serializers.CharField(
        allow_null=True,
        help_text="the id the venue knows the order by now (unique across accounts; "
        "<id>/<n> after n amends)",
    )
    account = serializers.CharField()
    symbol = serializers.CharField()
    side = serializers.ChoiceField(choices=Side.values)
    type = serializers.ChoiceField(choices=OrderType.values)
    quantity = serializers.CharField()
    price = serializers.CharField(allow_null=True)
    time_in_force = serializers.ChoiceField(choices=TimeInForce.values)
    venue = serializers.CharField(allow_null=True)
    venue_order_id = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=Order.Status.values)
    filled_quantity = serializers.CharField()
    leaves_quantity = serializers.CharField()
    average_price = serializers.CharField(allow_null=True)
    reason = serializers.CharField()
    parent_id = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class OrderEventSerializer(_Out):
    builder = staticmethod(event_to_dict)
    sequence = serializers.IntegerField()
    kind = serializers.CharField()
    source = serializers.CharField()
    status = serializers.CharField()
    payload = serializers.JSONField()
    late = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class FillSerializer(_Out):
    builder = staticmethod(fill_to_dict)
    id = serializers.IntegerField()
    order_id = serializers.IntegerField()
    account = serializers.CharField()
    symbol = serializers.CharField()
    venue = serializers.CharField()
    venue_trade_id = serializers.CharField()
    side = serializers.CharField()
    quantity = serializers.CharField()
    price = serializers.CharField()
    fee = serializers.CharField()
    fee_currency = serializers.CharField()
    is_maker = serializers.BooleanField(allow_null=True)
    late = serializers.BooleanField()
    executed_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()


class RouteVenueSerializer(serializers.Serializer):
    """One venue the router considered in a round, and why it got what it got."""

    venue = serializers.CharField()
    price = serializers.CharField(allow_null=True, help_text="best price there (raw)")
    fee_adjusted_price = serializers.CharField(allow_null=True)
    available = serializers.CharField(help_text="quantity on its book up to the limit")
    age_ms = serializers.IntegerField(allow_null=True, help_text="quote age")
    score = serializers.CharField(help_text="0..1 from our own fills there")
    quantity = serializers.CharField(help_text="quantity routed there (0 if skipped)")
    reason = serializers.CharField()


class RouteChildSerializer(serializers.Serializer):
    order_id = serializers.IntegerField()
    client_order_id = serializers.CharField()
    venue_client_order_id = serializers.CharField()
    venue = serializers.CharField()
    quantity = serializers.CharField()
    price = serializers.CharField()
    time_in_force = serializers.ChoiceField(choices=TimeInForce.values)


class RouteDecisionSerializer(serializers.Serializer):
    """One round of routing of a parent order (routing.RouteDecision)."""

    round = serializers.IntegerField()
    kind = serializers.ChoiceField(choices=["sweep", "rest", "done"])
    quantity = serializers.CharField(help_text="what was left to route")
    created_at = serializers.DateTimeField()
    children = RouteChildSerializer(many=True)
    venues = RouteVenueSerializer(many=True)
    rest_venue = serializers.CharField(allow_null=True)
    outcome = serializers.CharField()
    inputs = serializers.JSONField(help_text="the inputs that mattered: books, conditions")


class OrderDetailSerializer(OrderSerializer):
    events = OrderEventSerializer(many=True)
    fills = FillSerializer(many=True)
    children = OrderSerializer(
        many=True, help_text="a parent's child orders (empty for an order sent to a venue)"
    )
    route = RouteDecisionSerializer(
        many=True, help_text="a parent's route decisions, newest last (empty otherwise)"
    )

    def to_representation(self, instance: Order) -> dict[str, Any]:
        from routing.models import RouteDecision

        data = order_to_dict(instance)
        data["events"] = [event_to_dict(e) for e in instance.events.order_by("sequence")]
        data["fills"] = [
            fill_to_dict(f)
            for f in instance.fills.select_related("account", "instrument", "venue").order_by("id")
        ]
        if instance.venue_id is None:
            children = instance.children.select_related("account", "instrument", "venue")
            data["children"] = [order_to_dict(c) for c in children.order_by("id")]
            decisions = RouteDecision.objects.filter(parent_id=instance.pk).order_by("round")
            data["route"] = [d.to_json() for d in decisions]
        else:
            data["children"], data["route"] = [], []
        return data


class RiskDeniedSerializer(ErrorSerializer):
    """422: the order was stored DENIED; ``error.reasons`` says why."""

    order = OrderSerializer()


class PositionSerializer(_Out):
    builder = staticmethod(position_to_dict)
    account = serializers.CharField()
    symbol = serializers.CharField()
    quantity = serializers.CharField()
    average_price = serializers.CharField(allow_null=True)
    realized_pnl = serializers.CharField()
    unrealized_pnl = serializers.CharField(allow_null=True)
    fees = serializers.CharField()
    mark_price = serializers.CharField(allow_null=True)
    updated_at = serializers.DateTimeField()
