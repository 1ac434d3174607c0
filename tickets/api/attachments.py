from django.http import FileResponse
from drf_spectacular.utils import OpenApiTypes, extend_schema
from rest_framework.views import APIView

from tickets import selectors
from tickets.content import INLINE_SAFE_TYPES


class AttachmentDownloadApi(APIView):
    """The file itself: shown inline only when it is a safe image type, downloaded otherwise."""

    @extend_schema(
        responses={
            (200, content_type): OpenApiTypes.BINARY
            for content_type in ["application/octet-stream", *sorted(INLINE_SAFE_TYPES)]
        }
    )
    def get(self, request, attachment_id: int):
        attachment = selectors.attachment_for_agent(request.user, attachment_id)
        inline = attachment.content_type in INLINE_SAFE_TYPES
        response = FileResponse(
            attachment.file.open("rb"),
            as_attachment=not inline,
            filename=attachment.filename,
            content_type=attachment.content_type if inline else "application/octet-stream",
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response
