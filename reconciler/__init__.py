"""reconciler: GitOps for identity.

Desired users, groups, rules and custom attributes live as YAML in git; the reconciler plans
against a live SCIM 2.0 tenant and applies exactly what was reviewed.
"""

from reconciler.desired.loader import LoadResult, load, load_files
from reconciler.desired.state import DesiredState
from reconciler.diagnostics import Diagnostic, Severity
from reconciler.errors import (
    InputError,
    ReconcilerError,
    TenantAuthError,
    TenantError,
    TenantProtocolError,
    UsageError,
)

__version__ = "0.1.0"

__all__ = [
    "DesiredState",
    "Diagnostic",
    "InputError",
    "LoadResult",
    "ReconcilerError",
    "Severity",
    "TenantAuthError",
    "TenantError",
    "TenantProtocolError",
    "UsageError",
    "__version__",
    "load",
    "load_files",
]
