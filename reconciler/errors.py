"""The exception root and its branches.

    ReconcilerError            anything the reconciler reports to a person (exit 1, no traceback)
    ├── UsageError             bad command-line input
    ├── InputError             desired-state or policy files that do not validate
    └── TenantError            the live tenant cannot be reached or refuses us
        ├── TenantAuthError    credentials missing or rejected
        ├── TenantProtocolError  the tenant answered something that is not SCIM
        └── TenantRequestError   the tenant refused one request (status, scimType, detail)

Lower layers translate their own exceptions into these once, at their boundary, ``from exc``.
Messages never contain secrets.
"""

from __future__ import annotations

from collections.abc import Sequence


class ReconcilerError(Exception):
    """An error meant for a person: ``str(exc)`` says what is wrong, on one line; ``details``
    list what it is about, a line each (files, records); ``hint`` says what to do. Lines are
    kept apart so that the names in them, escaped for the terminal, cannot add lines."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "", details: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.hint = hint
        self.details = tuple(details)


class UsageError(ReconcilerError):
    pass


class InputError(ReconcilerError):
    pass


class TenantError(ReconcilerError):
    pass


class TenantAuthError(TenantError):
    pass


class TenantProtocolError(TenantError):
    pass


class TenantRequestError(TenantError):
    """The tenant refused one request. Carries what apply needs to classify the failure."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        scim_type: str = "",
        detail: str = "",
        method: str = "",
        path: str = "",
        hint: str = "",
    ) -> None:
        super().__init__(message, hint)
        self.status = status
        self.scim_type = scim_type
        self.detail = detail
        self.method = method
        self.path = path
