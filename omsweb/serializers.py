"""Serializer bases shared by the project's APIs."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers


class StrictSerializer(serializers.Serializer):
    """Refuses fields it does not know, so a typo never silently drops a parameter, and
    takes a text field only as a JSON string (DRF's ``CharField`` turns ``0`` into
    ``"0"``), as the OpenAPI schema says."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, dict):
            raise serializers.ValidationError({"non_field_errors": ["expected a JSON object"]})
        unknown = sorted(set(data) - set(self.fields))
        if unknown:
            raise serializers.ValidationError({name: ["unknown field"] for name in unknown})
        not_text = sorted(
            name
            for name, field in self.fields.items()
            if isinstance(field, serializers.CharField | serializers.ChoiceField)
            and name in data
            and data[name] is not None
            and not isinstance(data[name], str)
        )
        if not_text:
            raise serializers.ValidationError({name: ["must be a string"] for name in not_text})
        return super().to_internal_value(data)
