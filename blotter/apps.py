from django.apps import AppConfig


class BlotterConfig(AppConfig):
    name = "blotter"
