"""Order API views: parse with a serializer, call one service, serialize the answer."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from omsweb import strict_input
from omsweb.openapi import ErrorSerializer
from orders import engine
from orders.access import visible_accounts
from orders.api import serializers as s
from orders.domain import lifecycle as lc
from orders.domain.commands import CancelAll, CancelOrder, ModifyOrder, SubmitOrder
from orders.models import Account, Fill, Instrument, Order, Position
from venues.models import Venue


def _lookup(model: Any, field: str, value: str, *, name: str, queryset: QuerySet | None = None):
    qs = queryset if queryset is not None else model.objects.all()
    obj = qs.filter(**{field: value}).first()
    if obj is None:
        raise serializers.ValidationError({name: [f"unknown {name} {value!r}"]})
    return obj


class OrderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = s.OrderSerializer

    def get_queryset(self) -> QuerySet[Order]:
        qs = Order.objects.select_related("account", "instrument", "venue")
        qs = qs.filter(account__in=visible_accounts(self.request.user))
        params = self.request.query_params
        for param, field in (
            ("status", "status"),
            ("account", "account__code"),
            ("symbol", "instrument__symbol"),
            ("venue", "venue__name"),
            ("client_order_id", "client_order_id"),
        ):
            value = params.get(param)
            if value:
                qs = qs.filter(**{f"{field}__in": value.split(",")})
        parent_id = strict_input._integer(params, "parent_id", low=1, high=strict_input.MAX_ID)
        if parent_id is not None:
            qs = qs.filter(parent_id=parent_id)
        return qs.order_by("-id")

    def get_serializer_class(self):
        if self.action == "retrieve":
            return s.OrderDetailSerializer
        return s.OrderSerializer

    @extend_schema(
        parameters=[
            *(
                OpenApiParameter(p, str, description=f"filter by {p} (comma-separated)")
                for p in ("status", "account", "symbol", "venue", "client_order_id")
            ),
            OpenApiParameter(
                "parent_id",
                {"type": "integer", "minimum": 1, "maximum": strict_input.MAX_ID},
                description="the children of this parent order",
            ),
        ]
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(
        request=s.ORDER_CREATE_SCHEMA,
        responses={
            201: s.OrderSerializer,
            200: s.OrderSerializer,
            409: ErrorSerializer,
            422: s.RiskDeniedSerializer,
        },
    )
    def create(self, request: Request) -> Response:
        data = s.OrderCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        v = data.validated_data
        result = engine.execute(
            SubmitOrder(
                account=v["account"],
                symbol=v["symbol"],
                side=v["side"],
                type=v["type"],
                quantity=v["quantity"],
                price=v.get("price"),
                time_in_force=v.get("time_in_force") or None,
                venue=v.get("venue") or None,
                client_order_id=v.get("client_order_id"),
                user_id=request.user.pk,
                source="api",
            )
        )
        return Response(
            s.order_to_dict(result.order),
            status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK,
        )

    @extend_schema(
        request=s.CancelSerializer, responses={202: s.OrderSerializer, 409: ErrorSerializer}
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        body = s.CancelSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        order = self.get_object()
        order = engine.execute(
            CancelOrder(order_id=order.pk, reason=body.validated_data.get("reason", ""))
        )
        return Response(s.order_to_dict(order), status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        request=s.OrderAmendSerializer,
        responses={202: s.OrderSerializer, 409: ErrorSerializer, 422: s.RiskDeniedSerializer},
    )
    @action(detail=True, methods=["post"])
    def amend(self, request: Request, pk: str) -> Response:
        body = s.OrderAmendSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        order = self.get_object()
        order = engine.execute(
            ModifyOrder(
                order_id=order.pk,
                quantity=body.validated_data.get("quantity"),
                price=body.validated_data.get("price"),
            )
        )
        return Response(s.order_to_dict(order), status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=s.CancelAllSerializer, responses={202: dict})
    @action(detail=False, methods=["post"], url_path="cancel-all")
    def cancel_all(self, request: Request) -> Response:
        body = s.CancelAllSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        v = body.validated_data
        qs = Order.objects.filter(account__in=visible_accounts(request.user))
        if v.get("account"):
            account = _lookup(
                Account,
                "code",
                v["account"],
                name="account",
                queryset=visible_accounts(request.user),
            )
            qs = qs.filter(account=account)
        if v.get("symbol"):
            qs = qs.filter(instrument=_lookup(Instrument, "symbol", v["symbol"], name="symbol"))
        if v.get("venue"):
            qs = qs.filter(venue=_lookup(Venue, "name", v["venue"], name="venue"))
        open_ids = qs.filter(status__in=lc.values(lc.OPEN_STATUSES)).values_list("pk", flat=True)
        ids = engine.execute(CancelAll(order_ids=tuple(open_ids), reason="cancel-all"))
        return Response({"canceled": len(ids), "order_ids": ids}, status=status.HTTP_202_ACCEPTED)


class FillViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = s.FillSerializer

    def get_queryset(self) -> QuerySet[Fill]:
        qs = Fill.objects.select_related("account", "instrument", "venue").filter(
            account__in=visible_accounts(self.request.user)
        )
        params = self.request.query_params
        for param, field in (
            ("account", "account__code"),
            ("symbol", "instrument__symbol"),
            ("venue", "venue__name"),
        ):
            if params.get(param):
                qs = qs.filter(**{f"{field}__in": params[param].split(",")})
        order_ids = strict_input.ids(params, "order")
        if order_ids is not None:
            qs = qs.filter(order_id__in=order_ids)
        return qs.order_by("-id")


class PositionViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = s.PositionSerializer

    def get_queryset(self) -> QuerySet[Position]:
        qs = Position.objects.select_related("account", "instrument").filter(
            account__in=visible_accounts(self.request.user)
        )
        params = self.request.query_params
        if params.get("account"):
            qs = qs.filter(account__code__in=params["account"].split(","))
        if params.get("symbol"):
            qs = qs.filter(instrument__symbol__in=params["symbol"].split(","))
        return qs.order_by("account__code", "instrument__symbol")
