from django.apps import AppConfig


class FixgwConfig(AppConfig):
    name = "fixgw"
    verbose_name = "FIX gateway"
