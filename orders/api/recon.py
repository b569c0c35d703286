"""``/api/v1/reconciliation/``: runs, and orders found at venues that the OMS did not
place, with the actions to cancel or adopt them (risk and admin roles)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from omsweb.openapi import ErrorSerializer
from omsweb.roles import ADMIN, RISK, has_role
from orders import reconcile
from orders.api.serializers import OrderSerializer, dec, order_to_dict
from orders.models import Account, ReconciliationRun, UnknownVenueOrder


class RiskOrAdmin(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:  # noqa: ANN001
        return has_role(request.user, RISK, ADMIN)


class RunSerializer(serializers.ModelSerializer):
    venue = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = ReconciliationRun
        fields = ["id", "venue", "trigger", "status", "started_at", "finished_at", "found",
                  "fixed", "error"]  # fmt: skip


class UnknownSerializer(serializers.ModelSerializer):
    venue = serializers.SlugRelatedField(slug_field="name", read_only=True)

    class Meta:
        model = UnknownVenueOrder
        fields = ["id", "venue", "venue_order_id", "client_order_id", "symbol", "side", "type",
                  "quantity", "price", "filled_quantity", "state", "first_seen", "last_seen",
                  "adopted_order", "resolved_by"]  # fmt: skip

    def to_representation(self, instance: UnknownVenueOrder) -> dict[str, Any]:
        data = super().to_representation(instance)
        for key in ("quantity", "price", "filled_quantity"):
            data[key] = dec(getattr(instance, key))
        return data


class AdoptSerializer(serializers.Serializer):
    account = serializers.CharField(max_length=32)


class ReconciliationRunViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    serializer_class = RunSerializer
    permission_classes = [permissions.IsAuthenticated, RiskOrAdmin]
    queryset = ReconciliationRun.objects.select_related("venue").order_by("-id")


class UnknownVenueOrderViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    serializer_class = UnknownSerializer
    permission_classes = [permissions.IsAuthenticated, RiskOrAdmin]

    def get_queryset(self):  # noqa: ANN201
        qs = UnknownVenueOrder.objects.select_related("venue").order_by("-id")
        state = self.request.query_params.get("state")
        return qs.filter(state=state) if state else qs

    @extend_schema(request=None, responses={202: UnknownSerializer, 409: ErrorSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        unknown = reconcile.unknown_cancel(unknown_id=self.get_object().pk, user=str(request.user))
        return Response(UnknownSerializer(unknown).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(request=AdoptSerializer, responses={201: OrderSerializer, 409: ErrorSerializer})
    @action(detail=True, methods=["post"])
    def adopt(self, request: Request, pk: str) -> Response:
        body = AdoptSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        account = Account.objects.filter(code=body.validated_data["account"]).first()
        if account is None:
            raise serializers.ValidationError({"account": ["unknown account"]})
        order = reconcile.unknown_adopt(
            unknown_id=self.get_object().pk, account=account, user=request.user
        )
        order.refresh_from_db()
        return Response(order_to_dict(order), status=status.HTTP_201_CREATED)
