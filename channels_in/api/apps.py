from django.apps import AppConfig


class ApiChannelConfig(AppConfig):
    name = "channels_in.api"
    # Each channel app is labelled channel_<name>: a bare "api" would say nothing in migrations or admin.
    label = "channel_api"
    verbose_name = "API channel"
