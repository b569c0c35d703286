"""The OpenAPI schema says what the server does (issue 12, item 5), checked by
schemathesis against the real server (``tests/omsweb/test_schema_fuzz.py``).

``OmsAutoSchema`` is drf-spectacular's ``AutoSchema`` with the project's rules added in
one place:

* error answers: every operation documents the error envelope
  (``{"error": {"code", "message", ...}}``) for 401 and 403 (authentication and roles),
  400 when it takes a body or query parameters, and 404 when its path names a row;
  other statuses (409, 422, 503) are declared by the view that gives them;
* request bodies of a ``StrictSerializer`` refuse unknown properties
  (``additionalProperties: false``), as the serializer does, plus its
  ``openapi_rules`` (what its ``validate()`` requires, e.g. ``minProperties``);
* string query parameters hold no NUL character (``RejectNulInQuery`` refuses one).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

from omsweb.serializers import StrictSerializer

NO_NUL = "^[^\\x00]*$"


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()
    field = serializers.CharField(required=False, help_text="the first field named")
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="messages by field",
    )


class ErrorSerializer(serializers.Serializer):
    """The one error envelope (``omsweb/errors.py``)."""

    error = ErrorDetailSerializer()


class OmsAutoSchema(AutoSchema):
    def _map_serializer(self, serializer: Any, direction: str, bypass_extensions: bool = False):  # noqa: ANN202
        schema = super()._map_serializer(serializer, direction, bypass_extensions)
        if direction == "request" and isinstance(serializer, StrictSerializer):
            schema["additionalProperties"] = False
            # what the serializer's validate() adds, in JSON-schema words
            schema.update(getattr(serializer, "openapi_rules", {}))
        return schema

    def _get_parameters(self) -> list[dict[str, Any]]:
        parameters = super()._get_parameters()
        for parameter in parameters:
            schema = parameter.get("schema", {})
            if parameter.get("in") == "query" and schema.get("type") == "string":
                schema.setdefault("pattern", NO_NUL)
        return parameters

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        statuses = ["401", "403"]
        has_query = any(p.get("in") == "query" for p in self._get_parameters())
        if has_query or self.method in ("POST", "PUT", "PATCH"):
            statuses.append("400")
        if "{" in self.path:
            statuses.append("404")
        for status in statuses:
            if status not in responses:
                responses[status] = self._get_response_for_code(ErrorSerializer, status)
        return responses
