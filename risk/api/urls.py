from django.urls import path
from rest_framework.routers import SimpleRouter

from risk.api.views import LimitViewSet, kill_switch, trading_state

router = SimpleRouter()
router.register("limits", LimitViewSet, basename="risk-limit")

urlpatterns = [
    path("trading-state/", trading_state, name="risk-trading-state"),
    path("kill-switch/", kill_switch, name="risk-kill-switch"),
    *router.urls,
]
