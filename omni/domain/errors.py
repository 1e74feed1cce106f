"""Domain errors: transports map them to HTTP statuses / Socket.IO acks with the message.

The first argument is an English **template** from the message catalog (``omni/locale``), its
``{name}`` placeholders filled from keyword params: ``InvalidInput("{field} must be at most
{max_len} characters", max_len=128, field="name")``. ``message`` is the English text (logs,
tests); transports show ``omni.i18n.localize(exc, lang)`` in the caller's language. Never pass
an f-string: the text could not be found in the catalog (``tests/test_i18n.py`` checks it).
"""

from __future__ import annotations

from collections.abc import Sequence

from omni.i18n import render


class DomainError(Exception):
    """A refused request; its message is shown to the caller (no internals inside).

    ``errors`` carries one error per field when a validation found several, so a form can show
    them all at once; the error itself then describes the first.
    """

    status_code = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        /,
        *,
        field: str | None = None,
        errors: Sequence[DomainError] = (),
        **params: object,
    ) -> None:
        self.template = message
        self.params = params
        self.field = field
        self.errors = list(errors)
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The English text (for logs and API clients that don't send a language)."""
        return render(self.template, {"field": self.field, **self.params})

    def localized(self, lang: str, field_label: str | None = None) -> str:
        from omni.i18n import localize

        return localize(self, lang, field_label)


class InvalidInput(DomainError):
    status_code = 422
    code = "invalid"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class PermissionDenied(DomainError):
    status_code = 403
    code = "forbidden"


class NotAuthenticated(DomainError):
    status_code = 401
    code = "not_authenticated"


class OtpRequired(NotAuthenticated):
    """The password was right; the user signs in with a second factor and sent no code."""

    code = "otp_required"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class TooManyRequests(DomainError):
    status_code = 429
    code = "rate_limited"
