from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("tickets.api.urls")),
    # One include per channel app; the API channel keeps the URL it had in the core.
    path("api/v1/inbound/", include("channels_in.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # GET only: DRF answers OPTIONS with its metadata, which the docs page's HTML renderer cannot render.
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(url_name="schema", http_method_names=["get", "head"]),
        name="api-docs",
    ),
    path("api/v1/realtime/", include("realtime.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("tickets.views.urls")),
]

handler400 = "helpdesk.errors.bad_request"
handler404 = "helpdesk.errors.page_not_found"
handler500 = "helpdesk.errors.server_error"
