"""The blotter page and its login. The page is a static shell: it gets its data over
``/ws/blotter/`` and acts through the REST API (session + CSRF)."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.views.decorators.cache import never_cache

from blotter.snapshot import user_info

LOGIN_URL = "/login/"


@never_cache
@login_required(login_url=LOGIN_URL)
def blotter(request: HttpRequest) -> HttpResponse:
    config = {
        "ws_path": "/ws/blotter/",
        "api": "/api/v1/",
        "csrf_token": get_token(request),
        "login_url": LOGIN_URL,
        "user": user_info(request.user),
    }
    return render(request, "blotter/blotter.html", {"config": config})


@never_cache
@login_required(login_url=LOGIN_URL)
def tca(request: HttpRequest) -> HttpResponse:
    """Transaction-cost analysis: ``/api/v1/tca/`` and ``/api/v1/routing/scores/`` drawn as
    tables and charts (Chart.js, vendored under static/blotter/vendor: no CDN)."""
    config = {"api": "/api/v1/", "user": user_info(request.user)}
    return render(request, "blotter/tca.html", {"config": config})


login = auth_views.LoginView.as_view(
    template_name="blotter/login.html", next_page="/", redirect_authenticated_user=True
)
logout = auth_views.LogoutView.as_view(next_page=LOGIN_URL)
