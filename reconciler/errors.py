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


class ReconcilerError(Exception):
    """An error meant for a person: ``str(exc)`` says what is wrong, ``hint`` what to do."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.hint = hint


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
