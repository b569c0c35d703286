"""Risk API views: parse with a serializer, call one service, serialize the answer.

Reading limits and trading states is open to every authenticated user (a trader sees
the global ones and those of their accounts); changing them takes the ``risk`` or
``admin`` role.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q, QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import api_view
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from omsweb.openapi import ErrorSerializer
from omsweb.roles import ADMIN, RISK, has_role
from orders.access import sees_all_accounts, visible_accounts
from orders.models import Account, Instrument
from risk import services
from risk.api import serializers as s
from risk.models import RiskLimit, StateScope, TradingState
from venues.models import Venue


def _require_risk_role(request: Request, what: str) -> None:
    if not has_role(request.user, RISK, ADMIN):
        raise PermissionDenied(f"only the risk and admin roles may change {what}")


def _lookup(model: Any, field: str, value: str, *, name: str) -> Any:
    obj = model.objects.filter(**{field: value}).first()
    if obj is None:
        raise serializers.ValidationError({name: [f"unknown {name} {value!r}"]})
    return obj


class LimitViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.LimitSerializer
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet[RiskLimit]:
        qs = RiskLimit.objects.select_related("account", "instrument")
        user = self.request.user
        if not sees_all_accounts(user):
            qs = qs.filter(Q(account__isnull=True) | Q(account__in=visible_accounts(user)))
        params = self.request.query_params
        for param, field in (
            ("account", "account__code"),
            ("symbol", "instrument__symbol"),
            ("kind", "kind"),
        ):
            if params.get(param):
                qs = qs.filter(**{f"{field}__in": params[param].split(",")})
        return qs.order_by("kind", "account_id", "instrument_id", "id")

    @extend_schema(
        parameters=[
            OpenApiParameter(p, str, description=f"filter by {p} (comma-separated)")
            for p in ("account", "symbol", "kind")
        ]
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=s.LimitCreateSerializer, responses={201: s.LimitSerializer, 409: ErrorSerializer}
    )
    def create(self, request: Request) -> Response:
        _require_risk_role(request, "limits")
        body = s.LimitCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        v = body.validated_data
        account = (
            _lookup(Account, "code", v["account"], name="account") if v.get("account") else None
        )
        instrument = (
            _lookup(Instrument, "symbol", v["symbol"], name="symbol") if v.get("symbol") else None
        )
        limit = services.limit_create(
            actor=services.Actor.of(request.user, "api"),
            kind=v["kind"],
            value=v["value"],
            reason=v["reason"],
            account=account,
            instrument=instrument,
            breach_action=v.get("breach_action", ""),
        )
        return Response(s.limit_to_dict(limit), status=status.HTTP_201_CREATED)

    @extend_schema(request=s.LimitUpdateSerializer, responses={200: s.LimitSerializer})
    def partial_update(self, request: Request, pk: str) -> Response:
        _require_risk_role(request, "limits")
        limit = self.get_object()
        body = s.LimitUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        v = body.validated_data
        limit = services.limit_update(
            actor=services.Actor.of(request.user, "api"),
            limit_id=limit.pk,
            reason=v["reason"],
            value=v.get("value"),
            breach_action=v.get("breach_action"),
        )
        return Response(s.limit_to_dict(limit))


@extend_schema(responses={200: dict})
@api_view(["GET"])
def trading_state(request: Request) -> Response:
    """Every scope's trading state (ACTIVE rows included: they say who released it)."""
    qs = TradingState.objects.select_related("venue", "account", "instrument")
    if not sees_all_accounts(request.user):
        qs = qs.filter(Q(account__isnull=True) | Q(account__in=visible_accounts(request.user)))
    rows = [services.state_to_dict(row) for row in qs.order_by("scope", "id")]
    glob = next(
        (r for r in rows if r["scope"] == StateScope.GLOBAL),
        {"scope": "global", "target": None, "symbol": None, "state": "ACTIVE", "reason": ""},
    )
    return Response({"global": glob, "states": rows})


@extend_schema(request=s.KillSwitchSerializer, responses={200: s.TradingStateSerializer})
@api_view(["POST"])
def kill_switch(request: Request) -> Response:
    """Engage (HALTED, REDUCING) or release (ACTIVE) trading at a scope.

    ``{scope: global|venue|account|symbol, target?, symbol?, state, reason}``: ``target``
    names the venue, account or symbol; ``symbol`` narrows an account scope to one
    symbol. HALTED cancels every working order in scope (urgent queue).
    """
    _require_risk_role(request, "trading state")
    body = s.KillSwitchSerializer(data=request.data)
    body.is_valid(raise_exception=True)
    v = body.validated_data
    scope, target, symbol = v["scope"], v.get("target") or None, v.get("symbol") or None
    venue = account = instrument = None
    if scope != StateScope.GLOBAL and not target:
        raise serializers.ValidationError({"target": [f"scope {scope} needs a target"]})
    if scope == StateScope.GLOBAL and target:
        raise serializers.ValidationError({"target": ["scope global takes no target"]})
    if symbol and scope != StateScope.ACCOUNT:
        raise serializers.ValidationError({"symbol": ["symbol narrows an account scope only"]})
    if scope == StateScope.VENUE:
        venue = _lookup(Venue, "name", target, name="target")
    elif scope == StateScope.ACCOUNT:
        account = _lookup(Account, "code", target, name="target")
        if symbol:
            instrument = _lookup(Instrument, "symbol", symbol, name="symbol")
    elif scope == StateScope.SYMBOL:
        instrument = _lookup(Instrument, "symbol", target, name="target")
    result = services.trading_state_set(
        actor=services.Actor.of(request.user, "api"),
        scope=scope,
        state=v["state"],
        reason=v["reason"],
        venue=venue,
        account=account,
        instrument=instrument,
    )
    body_out = services.state_to_dict(result.trading_state)
    if result.change is not None:
        body_out["previous_state"] = result.change.old_state
        body_out["change_id"] = result.change.pk
    body_out["cancel_sweep"] = result.trading_state.state == "HALTED"
    return Response(body_out, status=status.HTTP_200_OK)
