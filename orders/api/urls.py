from rest_framework.routers import SimpleRouter

from orders.api.recon import (
    ReconciliationRunViewSet,
    ReconFindingViewSet,
    UnknownVenueOrderViewSet,
)
from orders.api.views import FillViewSet, OrderViewSet, PositionViewSet

router = SimpleRouter()
router.register("orders", OrderViewSet, basename="order")
router.register("fills", FillViewSet, basename="fill")
router.register("positions", PositionViewSet, basename="position")
router.register("reconciliation/runs", ReconciliationRunViewSet, basename="recon-run")
router.register("reconciliation/findings", ReconFindingViewSet, basename="recon-finding")
router.register("reconciliation/unknown-orders", UnknownVenueOrderViewSet, basename="unknown-order")

urlpatterns = router.urls
