from django.urls import path

from realtime.api import SocketTokenApi

app_name = "realtime"

urlpatterns = [
    path("token/", SocketTokenApi.as_view(), name="token"),
]
