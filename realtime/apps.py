from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    """The realtime service: WebSockets that push ticket event ids to the agents who may see them."""

    name = "realtime"
    verbose_name = "Realtime"
