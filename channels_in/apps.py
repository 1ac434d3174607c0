from django.apps import AppConfig


class ChannelsInConfig(AppConfig):
    """The channels' package: each channel is its own app below it (email, telegram, phone, widget)."""

    name = "channels_in"
    verbose_name = "Channels"
