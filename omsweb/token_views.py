"""``/api/v1/auth/token/``: log in for a token, rotate it, revoke it.

- ``POST /api/v1/auth/token/`` ``{username, password}`` -> ``{"token": ...}``: a new
  token each time (only hashes are stored, so an existing one cannot be shown again).
  Wrong credentials count towards the login lock-out (``omsweb/lockout.py``).
- ``POST /api/v1/auth/token/rotate/`` with ``Authorization: Token <old>`` ->
  ``{"token": <new>}``; the old one stops working.
- ``DELETE /api/v1/auth/token/`` with ``Authorization: Token <token>`` -> 204; the token
  stops working.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from django.contrib.auth.signals import user_logged_in
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from omsweb import api_tokens
from omsweb.openapi import ErrorSerializer
from omsweb.token_auth import TokenAuthentication


class LoginSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=128, trim_whitespace=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # the Django request, not DRF's: axes marks a locked-out request on it, and its
        # middleware turns the mark into the lock-out answer
        user = authenticate(
            request=self.context["request"],
            username=attrs["username"],
            password=attrs["password"],
        )
        if user is None:
            raise serializers.ValidationError(
                "Unable to log in with provided credentials.", code="authorization"
            )
        attrs["user"] = user
        return attrs


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="shown once: only its hash is stored")


class TokenView(APIView):
    """POST: log in for a new token (no token needed). DELETE: revoke the token sent."""

    authentication_classes = [TokenAuthentication]

    def get_permissions(self) -> list[Any]:
        if self.request.method == "POST":
            return []
        return [IsAuthenticated()]

    @extend_schema(
        request=LoginSerializer,
        responses={200: TokenSerializer, 429: ErrorSerializer},  # 429: locked out
        auth=[],  # no token needed
    )
    def post(self, request: Request) -> Response:
        serializer = LoginSerializer(data=request.data, context={"request": request._request})
        serializer.is_valid(raise_exception=True)
        user = serializer.validated_data["user"]
        # a login like the others: last_login, axes' access log and its clean-up of
        # expired lock-outs
        user_logged_in.send(sender=user.__class__, request=request._request, user=user)
        token = api_tokens.issue(user=user, source="api_login")
        return Response({"token": token})

    @extend_schema(responses={204: None})
    def delete(self, request: Request) -> Response:
        api_tokens.revoke(token=request.auth, actor=request.user.get_username())
        return Response(status=status.HTTP_204_NO_CONTENT)


class RotateTokenView(APIView):
    """POST with ``Authorization: Token <old>``: ``{"token": <new>}``."""

    authentication_classes = [TokenAuthentication]
    permission_classes = [IsAuthenticated]

    @extend_schema(request=None, responses=TokenSerializer)
    def post(self, request: Request) -> Response:
        new = api_tokens.rotate(token=request.auth, actor=request.user.get_username())
        if new is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        return Response({"token": new})
