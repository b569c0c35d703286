from rest_framework.routers import SimpleRouter

from orders.api.views import FillViewSet, OrderViewSet, PositionViewSet

router = SimpleRouter()
router.register("orders", OrderViewSet, basename="order")
router.register("fills", FillViewSet, basename="fill")
router.register("positions", PositionViewSet, basename="position")

urlpatterns = router.urls
