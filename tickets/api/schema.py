"""The OpenAPI schema tells every answer an operation can give, errors included, with the errors' shape.

drf-spectacular documents the success answers; this AutoSchema adds the error answers that follow from how
an operation is built (its input, path ids, pagination, permissions, throttles), so a new endpoint is
documented truthfully without annotations. A view declares only what its services add: a 409 (CONFLICT).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from drf_spectacular.utils import OpenApiResponse
from rest_framework.permissions import AllowAny

from tickets.api.errors import ERROR_SCHEMA, VALIDATION_ERROR_SCHEMA

_ERROR = ResolvedComponent(name="Error", type=ResolvedComponent.SCHEMA, object="Error", schema=ERROR_SCHEMA)
_VALIDATION_ERROR = ResolvedComponent(
    name="ValidationError",
    type=ResolvedComponent.SCHEMA,
    object="ValidationError",
    schema=VALIDATION_ERROR_SCHEMA,
)

ERROR_REF = _ERROR.ref
# For @extend_schema(responses={..., 409: CONFLICT}) on operations whose services refuse with a DomainError.
CONFLICT = OpenApiResponse(ERROR_REF, description="The domain refuses the change (see `code`).")


class AutoSchema(SpectacularAutoSchema):
    def get_operation(
        self, path: str, path_regex: str, path_prefix: str, method: str, registry: Any
    ) -> dict[str, Any] | None:
        operation = super().get_operation(path, path_regex, path_prefix, method, registry)
        if operation is None:
            return None
        registry.register_on_missing(_ERROR)
        registry.register_on_missing(_VALIDATION_ERROR)
        responses = operation["responses"]
        for status, description in self._error_statuses(operation):
            component = _VALIDATION_ERROR if status == 400 else _ERROR
            responses.setdefault(
                str(status),
                {"description": description, "content": {"application/json": {"schema": component.ref}}},
            )
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _error_statuses(self, operation: dict[str, Any]) -> list[tuple[int, str]]:
        parameters = operation.get("parameters", [])
        has_body = "requestBody" in operation
        statuses = []
        if has_body or any(parameter["in"] == "query" for parameter in parameters):
            statuses.append((400, "Invalid input"))
        if self.view.get_authenticators():
            # Any request may carry a token that is wrong or whose user is inactive.
            statuses.append((401, "Not signed in, or the token is not valid"))
        if not all(isinstance(permission, AllowAny) for permission in self.view.get_permissions()):
            statuses.append((403, "Signed in, but not allowed"))
        # A cursor that is not one of ours is DRF's NotFound, like an id the caller may not see.
        if any(parameter["in"] == "path" for parameter in parameters) or self._paginates():
            statuses.append((404, "Not found, or not yours to see"))
        if has_body:
            statuses.append((413, "The body is larger than the server takes"))
            statuses.append((415, "The body is not in a media type the operation takes"))
        if self.view.get_throttles() or getattr(self.view, "locks_out", False):
            statuses.append((429, "Too many requests; see Retry-After"))
        statuses.append(
            (503, "The database took too long or is out of reach; retry after Retry-After seconds")
        )
        return statuses

    def _paginates(self) -> bool:
        return self.method == "GET" and self._is_list_view() and self._get_paginator() is not None
