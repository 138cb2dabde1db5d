"""The exceptions of the HTTP clients; messages name the problem and never carry secrets or account names."""

from __future__ import annotations


class ClientError(RuntimeError):
    """Base of every error raised by the clients in this package."""


class AuthError(ClientError):
    """No access token could be obtained: credentials rejected, token endpoint down or answering nonsense.

    Job-wide, not per account: every later request would fail the same way, so callers stop the run.
    """


class AmsError(ClientError):
    """The walk of the Account Management System cannot continue."""


class AmsCursorExpiredError(AmsError):
    """AMS no longer knows the cursor (``400 invalid_cursor``): the walk must restart from the first page.

    A separate type so a caller can catch exactly this case and restart, while other AMS errors end the run.
    """


class ResponseTooLargeError(ClientError):
    """A response body is over the size the contract allows: a server fault, retried like a 5xx."""
