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


class ChunkedBody:
    """A body sent with ``Transfer-Encoding: chunked`` (no ``Content-Length``) is read in
    full here, within ``DATA_UPLOAD_MAX_MEMORY_SIZE``, and its length set: DRF reads a
    body only as long as ``Content-Length`` says, so it took a chunked one for empty
    (and answered a misleading "account: This field is required")."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        chunked = "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not request.META.get("CONTENT_LENGTH"):
            # Django reads past a missing length on ASGI and refuses an oversized body
            # (RequestDataTooBig: a 400)
            request.META["CONTENT_LENGTH"] = str(len(request.body))
        return self.get_response(request)
