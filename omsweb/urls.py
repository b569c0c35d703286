from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from marketdata.api import ConsolidatedBookView, MarketDataView
from omsweb import health, metrics_endpoint, token_views
from routing.api import TcaView, VenueScoresView
from venues.api import VenueViewSet

venues_api = SimpleRouter()
venues_api.register("venues", VenueViewSet, basename="venue")

handler400 = "omsweb.errors.json_400"
handler404 = "omsweb.errors.json_404"
handler500 = "omsweb.errors.json_500"

api_v1 = [
    path("auth/token/", token_views.TokenView.as_view(), name="api-token"),
    path("auth/token/rotate/", token_views.RotateTokenView.as_view(), name="api-token-rotate"),
    path("health/", health.health, name="api-health"),
    path("", include("orders.api.urls")),
    path("", include(venues_api.urls)),
    path("risk/", include("risk.api.urls")),
    path("marketdata/", MarketDataView.as_view(), name="api-marketdata"),
    re_path(r"^marketdata/(?P<symbol>.+)/book/$", ConsolidatedBookView.as_view(), name="api-book"),
    path("tca/", TcaView.as_view(), name="api-tca"),
    path("routing/scores/", VenueScoresView.as_view(), name="api-routing-scores"),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics_endpoint.metrics, name="metrics"),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("", include("blotter.urls")),  # the blotter at /, /login/, /logout/
]
