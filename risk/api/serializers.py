"""Input validation and output shapes for the risk API (DESIGN section 9)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from omsweb.serializers import StrictSerializer
from omsweb.strict_input import DECIMAL_SCHEMA, plain_decimal
from orders.shapes import dec
from risk.checks import LimitKind
from risk.models import BreachAction, LimitScope, RiskLimit, State, StateScope, TradingState
from risk.services import state_to_dict

KINDS = [k.value for k in LimitKind]


@extend_schema_field(DECIMAL_SCHEMA)
class LimitValueField(serializers.Field):
    """A limit value: a decimal written plainly in ASCII, as order numbers are
    (``strict_input.plain_decimal``); its range is checked by the service."""

    default_error_messages = {
        "invalid": 'must be a decimal number (0 or more) given as a string, e.g. "5"'
    }

    def to_internal_value(self, data: Any) -> Decimal:
        value = plain_decimal(data)
        if value is None:
            self.fail("invalid")
        return value

    def to_representation(self, value: Any) -> Any:
        return value


class LimitCreateSerializer(StrictSerializer):
    scope = serializers.ChoiceField(choices=LimitScope.values)
    account = serializers.CharField(max_length=32, required=False, allow_null=True)
    symbol = serializers.CharField(max_length=32, required=False, allow_null=True)
    kind = serializers.ChoiceField(choices=KINDS)
    value = LimitValueField()
    breach_action = serializers.ChoiceField(
        choices=BreachAction.values, required=False, allow_blank=True
    )
    reason = serializers.CharField(max_length=1000)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        scope = attrs["scope"]
        needs_account = scope in (LimitScope.ACCOUNT, LimitScope.ACCOUNT_SYMBOL)
        needs_symbol = scope in (LimitScope.SYMBOL, LimitScope.ACCOUNT_SYMBOL)
        for name, needed in (("account", needs_account), ("symbol", needs_symbol)):
            given = attrs.get(name)
            if needed and not given:
                raise serializers.ValidationError({name: [f"scope {scope} needs {name}"]})
            if not needed and given:
                raise serializers.ValidationError({name: [f"scope {scope} takes no {name}"]})
        return attrs


class LimitUpdateSerializer(StrictSerializer):
    openapi_rules = {"anyOf": [{"required": ["value"]}, {"required": ["breach_action"]}]}
    value = LimitValueField(required=False)
    breach_action = serializers.ChoiceField(
        choices=BreachAction.values, required=False, allow_blank=True
    )
    reason = serializers.CharField(max_length=1000)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "value" not in attrs and "breach_action" not in attrs:
            raise serializers.ValidationError({"value": ["give a new value or breach_action"]})
        return attrs


class KillSwitchSerializer(StrictSerializer):
    scope = serializers.ChoiceField(choices=StateScope.values)
    target = serializers.CharField(max_length=64, required=False, allow_null=True, allow_blank=True)
    symbol = serializers.CharField(max_length=32, required=False, allow_null=True, allow_blank=True)
    state = serializers.ChoiceField(choices=State.values)
    reason = serializers.CharField(max_length=1000)


def limit_to_dict(limit: RiskLimit) -> dict[str, Any]:
    return {
        "id": limit.pk,
        "scope": limit.scope,
        "account": limit.account.code if limit.account_id else None,
        "symbol": limit.instrument.symbol if limit.instrument_id else None,
        "kind": limit.kind,
        "value": dec(limit.value),
        "breach_action": limit.breach_action,
        "reason": limit.reason,
        "updated_by": limit.updated_by_name,
        "updated_at": limit.updated_at.isoformat(),
    }


class LimitSerializer(serializers.Serializer):
    """Output shape of a limit (documents the OpenAPI schema)."""

    id = serializers.IntegerField()
    scope = serializers.ChoiceField(choices=LimitScope.values)
    account = serializers.CharField(allow_null=True)
    symbol = serializers.CharField(allow_null=True)
    kind = serializers.ChoiceField(choices=KINDS)
    value = serializers.CharField()
    breach_action = serializers.CharField()
    reason = serializers.CharField()
    updated_by = serializers.CharField()
    updated_at = serializers.DateTimeField()

    def to_representation(self, instance: RiskLimit) -> dict[str, Any]:
        return limit_to_dict(instance)


class TradingStateSerializer(serializers.Serializer):
    """Output shape of one scope's trading state."""

    id = serializers.IntegerField()
    scope = serializers.ChoiceField(choices=StateScope.values)
    target = serializers.CharField(allow_null=True)
    symbol = serializers.CharField(allow_null=True)
    state = serializers.ChoiceField(choices=State.values)
    reason = serializers.CharField()
    changed_by = serializers.CharField()
    changed_by_role = serializers.CharField()
    source = serializers.CharField()
    changed_at = serializers.DateTimeField()

    def to_representation(self, instance: TradingState) -> dict[str, Any]:
        return state_to_dict(instance)
