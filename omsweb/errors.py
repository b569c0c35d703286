"""One error envelope for the whole API: ``{"error": {"code", "message", ...}}``.

Field errors name the field (``"field"`` and ``"fields": {name: [messages]}``); risk
denials carry ``"reasons"`` and the stored order. Nothing a client sends yields a 500.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

log = logging.getLogger(__name__)


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            if key == "non_field_errors":
                name = prefix or "non_field_errors"
            for k, v in _flatten(value, name).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(detail, list):
        for item in detail:
            for k, v in _flatten(item, prefix).items():
                out.setdefault(k, []).extend(v)
    else:
        out.setdefault(prefix or "non_field_errors", []).append(str(detail))
    return out


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    from orders.domain.errors import OmsError, OrderRiskDenied

    if isinstance(exc, OrderRiskDenied):
        from orders.shapes import order_to_dict

        body = error_body(exc.code, exc.message, reasons=exc.reasons)
        body["order"] = order_to_dict(exc.order)
        return Response(body, status=exc.status_code)
    if isinstance(exc, OmsError):
        extra: dict[str, Any] = dict(exc.extra)
        if exc.field:
            extra["field"] = exc.field
            extra["fields"] = exc.fields
        return Response(error_body(exc.code, exc.message, **extra), status=exc.status_code)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        first = next(iter(fields.items()))
        message = f"{first[0]}: {first[1][0]}"
        return Response(
            error_body("VALIDATION_ERROR", message, field=first[0], fields=fields),
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, exceptions.ParseError):
        return Response(error_body("PARSE_ERROR", str(exc.detail)), status=400)
    response = drf_exception_handler(exc, context)
    if response is not None:
        detail = getattr(exc, "detail", None)
        code = getattr(exc, "default_code", "error").upper()
        response.data = error_body(code, str(detail) if detail is not None else str(exc))
        return response
    return None


def json_404(request, exception=None):  # noqa: ANN001 - Django handler signature
    return JsonResponse(error_body("NOT_FOUND", "not found"), status=404)


def json_500(request):  # noqa: ANN001
    return JsonResponse(error_body("SERVER_ERROR", "internal error"), status=500)


def json_400(request, exception=None):  # noqa: ANN001
    message = str(exception) if exception else "bad request"
    return JsonResponse(error_body("BAD_REQUEST", message), status=400)
