"""Middleware of the project shell."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

from omsweb.errors import error_body


class RejectNulInQuery:
    """400 for a query parameter holding a NUL character: PostgreSQL refuses one in any
    string, so a filter with one could only fail (as a 500)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        for name, values in request.GET.lists():
            if "\x00" in name or any("\x00" in v for v in values):
                field = name.replace("\x00", "")
                message = "contains a NUL character"
                body = error_body(
                    "VALIDATION_ERROR",
                    f"{field}: {message}",
                    field=field,
                    fields={field: [message]},
                )
                return JsonResponse(body, status=400)
        return self.get_response(request)
