from django.urls import path

from tickets.api.attachments import AttachmentDownloadApi
from tickets.api.customers import CustomerDetailApi, CustomerListApi
from tickets.api.people import MeApi, TeamListApi
from tickets.api.portal import PortalTicketDetailApi, PortalTicketListApi
from tickets.api.replies import TicketNoteApi, TicketReplyApi
from tickets.api.search import TicketSearchApi
from tickets.api.tickets import TicketDetailApi, TicketListApi
from tickets.api.tokens import CurrentTokenApi, TokenLoginApi

app_name = "api"


urlpatterns = [
    path("auth/token/", TokenLoginApi.as_view(), name="token"),
    path("auth/token/current/", CurrentTokenApi.as_view(), name="token-current"),
    path("tickets/", TicketListApi.as_view(), name="ticket-list"),
    path("tickets/<int:ticket_id>/", TicketDetailApi.as_view(), name="ticket-detail"),
    path("tickets/<int:ticket_id>/reply/", TicketReplyApi.as_view(), name="ticket-reply"),
    path("tickets/<int:ticket_id>/notes/", TicketNoteApi.as_view(), name="ticket-note"),
    path("search/", TicketSearchApi.as_view(), name="ticket-search"),
    path("attachments/<int:attachment_id>/", AttachmentDownloadApi.as_view(), name="attachment"),
    path("customers/", CustomerListApi.as_view(), name="customer-list"),
    path("customers/<int:customer_id>/", CustomerDetailApi.as_view(), name="customer-detail"),
    path("teams/", TeamListApi.as_view(), name="team-list"),
    path("users/me/", MeApi.as_view(), name="me"),
    path("portal/tickets/", PortalTicketListApi.as_view(), name="portal-ticket-list"),
    path("portal/tickets/<int:ticket_id>/", PortalTicketDetailApi.as_view(), name="portal-ticket-detail"),
]
