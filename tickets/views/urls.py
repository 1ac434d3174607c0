from django.urls import path

from tickets.views.home import home

urlpatterns = [
    path("", home, name="home"),
]
