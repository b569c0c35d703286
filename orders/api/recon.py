"""``/api/v1/reconciliation/``: runs, their findings (every difference between a venue
and the OMS, with the operator's actions: resolve, confirm a mass-missing alert), and
orders found at venues that the OMS did not place, with the actions to cancel or adopt
them. Runs and unknown orders are for the risk and admin roles; a trader sees the
findings about orders of their own accounts."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, permissions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from omsweb.openapi import ErrorSerializer
from omsweb.roles import ADMIN, RISK, has_role
from omsweb.serializers import StrictSerializer
from orders import reconcile
from orders.access import sees_all_accounts, visible_accounts
from orders.api.serializers import OrderSerializer, dec, order_to_dict
from orders.models import Account, ReconciliationRun, ReconFinding, UnknownVenueOrder


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


# --- findings ----------------------------------------------------------------------------


class FindingSerializer(serializers.ModelSerializer):
    venue = serializers.SlugRelatedField(slug_field="name", read_only=True)
    open = serializers.BooleanField(source="is_open", read_only=True)
    kind = serializers.CharField(read_only=True, help_text=", ".join(ReconFinding.Kind.values))

    class Meta:
        model = ReconFinding
        fields = ["id", "run", "venue", "order", "kind", "severity", "key", "message", "detail",
                  "created_at", "last_seen", "open", "resolved_at", "resolved_by",
                  "resolution"]  # fmt: skip


class ResolveSerializer(StrictSerializer):
    resolution = serializers.CharField(max_length=1000, required=False, allow_blank=True)


class ConfirmationSerializer(serializers.Serializer):
    finding = FindingSerializer()
    closed = serializers.ListField(child=serializers.IntegerField())
    settled = serializers.ListField(child=serializers.IntegerField())
    unsettled = serializers.ListField(child=serializers.IntegerField())


def _choice(params: Any, name: str, choices: list[str]) -> list[str] | None:
    raw = params.get(name)
    if not raw:
        return None
    values = raw.split(",")
    bad = [v for v in values if v not in choices]
    if bad:
        raise serializers.ValidationError({name: [f"must be one of {', '.join(choices)}"]})
    return values


FINDING_FILTERS = [
    OpenApiParameter("venue", str, description="venue name(s), comma-separated"),
    OpenApiParameter("severity", str, description="INFO, WARNING, CRITICAL (comma-separated)"),
    OpenApiParameter("kind", str, description="finding kind(s), comma-separated"),
    OpenApiParameter("open", bool, description="true: unresolved only; false: resolved only"),
]

FINDING_ID = OpenApiParameter("id", int, OpenApiParameter.PATH, description="finding id")


@extend_schema_view(
    retrieve=extend_schema(parameters=[FINDING_ID]),
    resolve=extend_schema(parameters=[FINDING_ID]),
    confirm=extend_schema(parameters=[FINDING_ID]),
)
class ReconFindingViewSet(
    mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet
):
    """What reconciliation found. A trader sees the findings about orders of their
    accounts; the risk and admin roles see every finding and act on them."""

    serializer_class = FindingSerializer
    permission_classes = [permissions.IsAuthenticated]

    def get_queryset(self) -> QuerySet[ReconFinding]:
        qs = ReconFinding.objects.select_related("venue").order_by("-id")
        if not sees_all_accounts(self.request.user):
            qs = qs.filter(order__account__in=visible_accounts(self.request.user))
        params = self.request.query_params
        if params.get("venue"):
            qs = qs.filter(venue__name__in=params["venue"].split(","))
        severity = _choice(params, "severity", ReconFinding.Severity.values)
        if severity:
            qs = qs.filter(severity__in=severity)
        kind = _choice(params, "kind", ReconFinding.Kind.values)
        if kind:
            qs = qs.filter(kind__in=kind)
        is_open = _choice(params, "open", ["true", "false"])
        if is_open:
            qs = qs.filter(resolved_at__isnull=is_open[-1] == "true")
        return qs

    @extend_schema(parameters=FINDING_FILTERS)
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    def _operator_only(self, request: Request) -> None:
        if not has_role(request.user, RISK, ADMIN):
            self.permission_denied(request, message="only the risk and admin roles act on findings")

    @extend_schema(request=ResolveSerializer, responses={200: FindingSerializer})
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, pk: str) -> Response:
        """Mark a finding dealt with (who and when are recorded)."""
        self._operator_only(request)
        body = ResolveSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        finding = reconcile.resolve_finding(
            finding_id=self.get_object().pk,
            user=request.user.get_username(),
            resolution=body.validated_data.get("resolution", ""),
        )
        return Response(FindingSerializer(finding).data)

    @extend_schema(request=None, responses={200: ConfirmationSerializer})
    @action(detail=True, methods=["post"])
    def confirm(self, request: Request, pk: str) -> Response:
        """Confirm a mass-missing alert: the orders the venue still does not know are
        closed (CANCELED) through the engine; the venue stays REDUCING until released."""
        self._operator_only(request)
        done = reconcile.confirm_missing(
            finding_id=self.get_object().pk, user=request.user.get_username()
        )
        return Response(ConfirmationSerializer(done).data)
