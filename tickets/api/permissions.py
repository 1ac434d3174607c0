from rest_framework.permissions import BasePermission


class IsStaffAgent(BasePermission):
    """The agent API: agents, supervisors and admins. Customers see nothing of it."""

    message = "This API is for agents."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_agent)


class IsCustomer(BasePermission):
    """The portal API: signed-in customers, who see only their own tickets."""

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and getattr(user, "customer_profile", None))


class IsAdmin(BasePermission):
    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(
            user and user.is_authenticated and user.is_active and (user.role == "admin" or user.is_superuser)
        )
