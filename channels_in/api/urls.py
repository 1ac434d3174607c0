from django.urls import path

from channels_in.api.views import InboundMessageApi

app_name = "api_channel"

urlpatterns = [
    path("messages/", InboundMessageApi.as_view(), name="message"),
]
