from django.urls import path

from blotter import views

urlpatterns = [
    path("", views.blotter, name="blotter"),
    path("tca/", views.tca, name="tca"),
    path("login/", views.login, name="login"),
    path("logout/", views.logout, name="logout"),
]
