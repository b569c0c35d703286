from django.apps import AppConfig


class OmsWebConfig(AppConfig):
    name = "omsweb"
    verbose_name = "OMS"

    def ready(self) -> None:
        from omsweb import lockout  # noqa: F401 - connects the lock-out audit log lines
