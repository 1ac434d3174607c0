"""Domain errors: services raise these; one DRF handler and one view helper map them to HTTP."""


class DomainError(Exception):
    """A request the domain refuses. `code` is stable for API clients; the message is for people."""

    code = "domain_error"
    http_status = 409

    def __init__(self, message: str = "", **details: object) -> None:
        super().__init__(message or self.__doc__ or self.code)
        self.details = details


class InvalidIdentity(DomainError):
    """The address is not valid for its channel."""

    code = "invalid_identity"
    http_status = 400


class TicketClosed(DomainError):
    """The ticket is closed; a new message starts a follow-up ticket instead."""

    code = "ticket_closed"


class InvalidTransition(DomainError):
    """The ticket cannot move to that status from its current one."""

    code = "invalid_transition"


class NotAnAgent(DomainError):
    """Only an active agent, supervisor or admin can be given tickets."""

    code = "not_an_agent"
    http_status = 400


class UnknownChannel(DomainError):
    """No adapter is configured for this channel."""

    code = "unknown_channel"
    http_status = 400


class IdentityTaken(DomainError):
    """Another customer already has this address."""

    code = "identity_taken"


class StaleReply(DomainError):
    """New messages arrived on the ticket since you opened it; read them, then send anyway if still right."""

    code = "stale_reply"
