"""``/api/v1/venues/``: venue rows (admins write) with their live status: circuit breaker
and rate-limit use, read from Redis."""

from __future__ import annotations

from typing import Any

from rest_framework import mixins, permissions, serializers, viewsets

from omsweb.roles import ADMIN, has_role
from venues import credentials
from venues.models import Venue
from venues.services import venue_save


def venue_status(venue: Venue) -> dict[str, Any]:
    from omsweb.redis_client import client
    from venues.breaker import CircuitBreaker
    from venues.guard import pools_for
    from venues.ratelimit import RateLimiter
    from venues.status import misconfigured

    redis = client()
    breaker = CircuitBreaker(redis, venue.name).state()
    limiter = RateLimiter(redis, venue.name, pools_for(venue.rate_limits))
    status = "disabled" if not venue.enabled else ("up" if breaker["state"] == "closed" else "down")
    detail = venue.disabled_reason if not venue.enabled else ""
    why = misconfigured(redis, venue.name) if venue.enabled else None
    if why:
        status, detail = "misconfigured", why
    return {
        "status": status,
        "detail": detail,
        "breaker": breaker,
        "rate_limit": {"usage": limiter.usage(), "paused_for_s": round(limiter.paused_for(), 3)},
    }


class VenueSerializer(serializers.ModelSerializer):
    status = serializers.SerializerMethodField()
    status_detail = serializers.SerializerMethodField()
    breaker = serializers.SerializerMethodField()
    rate_limit = serializers.SerializerMethodField()

    class Meta:
        model = Venue
        fields = [
            "id", "name", "driver", "exchange_id", "base_url", "api_key_env", "secret_env",
            "fix_host", "fix_port", "sender_comp_id", "target_comp_id",
            "enabled", "disabled_reason", "rate_limits", "taker_fee", "status", "status_detail",
            "breaker", "rate_limit",
        ]  # fmt: skip
        # taker_fee: the venue's own figure, kept by `oms marketdata`
        read_only_fields = ["taker_fee", "disabled_reason"]

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """The row's checks (``venues/validation.py``, as the admin's): a bad field is a
        400 naming it; missing credentials keep the venue disabled, with the reason."""
        from types import SimpleNamespace

        self.validate_credentials(attrs)
        from venues.validation import enabling_problem, field_problems

        current = {
            f: getattr(self.instance, f)
            for f in self.Meta.fields
            if self.instance and hasattr(self.instance, f)
        }
        row = SimpleNamespace(
            **{
                "driver": "ccxt",
                "base_url": "",
                "exchange_id": "",
                "enabled": True,
                "fix_host": "",
                "fix_port": None,
                "sender_comp_id": "",
                "target_comp_id": "",
            }
            | current
            | attrs
        )
        problems = field_problems(row)
        if problems:
            raise serializers.ValidationError(problems)
        why = enabling_problem(self.instance, row)
        if why:
            attrs["enabled"], attrs["disabled_reason"] = False, why
        elif row.enabled:
            attrs["disabled_reason"] = ""
        return attrs

    def _status(self, venue: Venue) -> dict[str, Any]:
        cache = self.context.setdefault("_status", {})
        if venue.pk not in cache:
            cache[venue.pk] = venue_status(venue)
        return cache[venue.pk]

    def get_status(self, venue: Venue) -> str:
        return self._status(venue)["status"]

    def get_status_detail(self, venue: Venue) -> str:
        return self._status(venue)["detail"]

    def get_breaker(self, venue: Venue) -> dict[str, Any]:
        return self._status(venue)["breaker"]

    def get_rate_limit(self, venue: Venue) -> dict[str, Any]:
        return self._status(venue)["rate_limit"]

    def validate_credentials(self, attrs: dict[str, Any]) -> None:
        """Credential variables: the venue's own only (``venues/credentials.py``), checked
        against the name the row will have."""

        def value(field: str) -> Any:
            return attrs[field] if field in attrs else getattr(self.instance, field, "")

        values = {field: value(field) for field in credentials.FIELDS}
        errors = credentials.credential_errors(str(value("name")), values)
        if errors:
            raise serializers.ValidationError(errors)

    def validate_rate_limits(self, value: Any) -> Any:
        if not isinstance(value, dict):
            raise serializers.ValidationError("an object of pool: [capacity, window_s]")
        for name, spec in value.items():
            ok = (
                isinstance(spec, list | tuple)
                and len(spec) == 2
                and all(isinstance(x, int | float) and x > 0 for x in spec)
            )
            if not ok:
                raise serializers.ValidationError(f"{name}: expected [capacity > 0, window_s > 0]")
        return value


class AdminWrites(permissions.BasePermission):
    def has_permission(self, request, view) -> bool:  # noqa: ANN001
        if request.method in permissions.SAFE_METHODS:
            return True
        return has_role(request.user, ADMIN)


class VenueViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = VenueSerializer
    permission_classes = [permissions.IsAuthenticated, AdminWrites]
    queryset = Venue.objects.order_by("name")
    http_method_names = ["get", "post", "patch", "head", "options"]

    def perform_create(self, serializer: VenueSerializer) -> None:
        serializer.instance = venue_save(
            venue=Venue(**serializer.validated_data),
            actor=self.request.user.get_username(),
            via="api",
        )

    def perform_update(self, serializer: VenueSerializer) -> None:
        venue = serializer.instance
        for field, value in serializer.validated_data.items():
            setattr(venue, field, value)
        venue_save(venue=venue, actor=self.request.user.get_username(), via="api")
