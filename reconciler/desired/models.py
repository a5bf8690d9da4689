"""Desired-state models: what a team writes in ``desired-state/*.yaml``.

Every model is frozen and forbids unknown keys, so a typo is an error with a position, never a
silently ignored setting. Secrets are never values here: only the *names* of environment
variables that hold them (``token_env: SCIM_TOKEN``).

Naming: settings of the reconciler itself are ``snake_case`` (``delete_after``, ``token_env``);
SCIM attributes keep their SCIM spelling (``userName``, ``name.givenName``, ``emails``).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StringConstraints,
    Tag,
    field_validator,
    model_validator,
)

ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GENESYS_USER = "urn:ietf:params:scim:schemas:extension:genesys:purecloud:2.0:User"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"

ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
EnvName = Annotated[str, StringConstraints(pattern=ENV_NAME)]
NonEmpty = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]
Urn = Annotated[str, StringConstraints(pattern=r"^urn:[A-Za-z0-9][A-Za-z0-9-]{0,31}:\S+$")]
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
DURATION = re.compile(r"^(\d+)([hdw])$")
_UNIT_SECONDS = {"h": 3600, "d": 86400, "w": 604800}
MAX_GRACE_DAYS = 36500  # a grace period beyond this is "never"; dates past it overflow


# Only a real YAML boolean (true/false) is one: pydantic's lax mode would read "yes", "off",
# 1 or "0" as booleans (YAML 1.2 reads yes/no/on/off as text), so `active: off` would pass as
# false by accident and `active: "no"` by luck. Other fields keep their coercions.
Bool = StrictBool

# Validator messages read "what is wrong | what to write instead"; the loader splits them.


# One set per distinct combination of fields given; see Model.model_post_init.
_FIELDS_SET: dict[frozenset[str], set[str]] = {}


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def model_post_init(self, context: Any, /) -> None:
        # Pydantic keeps a set of the fields given on every instance: a third of a 100,000-user
        # desired state's memory. The models are frozen, so pydantic never changes that set
        # (model_copy copies it first); instances given the same fields share one.
        given = self.__pydantic_fields_set__
        shared = _FIELDS_SET.setdefault(frozenset(given), given)
        if shared is not given:
            object.__setattr__(self, "__pydantic_fields_set__", shared)


# --------------------------------------------------------------------------- tenant.yaml


class Profile(StrEnum):
    generic = "generic"
    goto = "goto"
    genesys = "genesys"


class AuthType(StrEnum):
    none = "none"
    bearer = "bearer"
    oauth2_client_credentials = "oauth2_client_credentials"


class Auth(Model):
    """How to authenticate. Secrets are named by environment variable, never written here."""

    type: AuthType = AuthType.none
    token_env: EnvName | None = Field(
        None, description="Environment variable holding the bearer token (type: bearer)."
    )
    token_url: str | None = Field(None, description="OAuth2 token endpoint (client credentials).")
    client_id_env: EnvName | None = Field(None, description="Variable holding the client id.")
    client_secret_env: EnvName | None = Field(
        None, description="Variable holding the client secret."
    )
    scope: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> Auth:
        if self.type is AuthType.bearer and not self.token_env:
            raise ValueError(
                "auth type 'bearer' needs token_env | add token_env: SCIM_TOKEN (a variable's name)"
            )
        if self.type is AuthType.oauth2_client_credentials:
            missing = [
                k
                for k in ("token_url", "client_id_env", "client_secret_env")
                if not getattr(self, k)
            ]
            if missing:
                raise ValueError(
                    "auth type 'oauth2_client_credentials' is incomplete | add "
                    + ", ".join(f"{k}:" for k in missing)
                )
        return self


UserKey = Literal["externalId", "userName", "emails"]
GroupKey = Literal["externalId", "displayName"]


class Matching(Model):
    """Ordered keys that pair a desired object with a live one; the first key that matches wins."""

    users: list[UserKey] = Field(
        default_factory=lambda: list[UserKey](["externalId", "userName", "emails"])
    )
    groups: list[GroupKey] = Field(
        default_factory=lambda: list[GroupKey](["externalId", "displayName"])
    )

    @field_validator("users", "groups")
    @classmethod
    def _unique_nonempty(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("no matching keys | name at least one, e.g. [externalId, userName]")
        if len(set(v)) != len(v):
            raise ValueError("a matching key is listed twice | list each key once")
        return v


class OwnershipMode(StrEnum):
    ignore = "ignore"
    report = "report"
    suspend = "suspend"
    delete = "delete"


class Ownership(Model):
    """What to do with live objects that desired-state does not describe."""

    users: OwnershipMode = OwnershipMode.report
    groups: OwnershipMode = OwnershipMode.report

    @field_validator("groups")
    @classmethod
    def _groups_cannot_suspend(cls, v: OwnershipMode) -> OwnershipMode:
        if v is OwnershipMode.suspend:
            raise ValueError("groups cannot be suspended | write ignore, report or delete")
        return v


class Lifecycle(Model):
    """What happens to a user removed from git (suspended now, deleted after a grace period)
    and to a group removed from git (emptied now, deleted after the same grace period)."""

    removed_users: Literal["suspend", "delete"] = "suspend"
    removed_groups: Literal["empty", "delete"] = Field(
        "empty",
        description="A group removed from git: empty it now and delete it after delete_after "
        "(empty), or delete it at once (delete).",
    )
    delete_after: str = Field(
        "never",
        description="Grace period before a suspended user or an emptied group is deleted: "
        "e.g. 21d, 12h, 2w, or never.",
    )

    @field_validator("delete_after")
    @classmethod
    def _duration(cls, v: str) -> str:
        if v == "never":
            return v
        m = DURATION.match(v)
        if not m:
            raise ValueError("not a duration | write 21d, 12h, 2w or never")
        n, unit = m.groups()
        if len(n) > 6 or int(n) * _UNIT_SECONDS[unit] > MAX_GRACE_DAYS * _UNIT_SECONDS["d"]:
            raise ValueError(
                f"a grace period longer than {MAX_GRACE_DAYS // 365} years | write never to keep "
                "removed users suspended forever"
            )
        return v

    @property
    def grace_seconds(self) -> int | None:
        """Grace period in seconds, ``None`` for never."""
        m = DURATION.match(self.delete_after)
        if not m:
            return None
        return int(m.group(1)) * _UNIT_SECONDS[m.group(2)]


class Limit(Model):
    """A safety limit: absolute (``max``) and relative to the live population (``max_percent``)."""

    max: int | None = Field(None, ge=0)
    max_percent: float | None = Field(None, ge=0, le=100)


class Safety(Model):
    """Limits on every kind of access loss (enforced by the plan, and again by apply)."""

    deletions: Limit = Limit()
    suspensions: Limit = Limit()
    membership_removals: Limit = Limit()
    lost_grants: Limit = Limit()
    rule_changes: Limit = Limit()


class MinHolders(Model):
    """At least ``min`` active users keep ``value`` of ``grant`` after every plan
    (like Peribolos' --min-admins): e.g. ``{grant: role, value: super-admin, min: 2}``."""

    grant: Literal[
        "role", "userGroup", "settingsTemplate", "products", "deviceGroups", "roles", "entitlements"
    ]
    value: NonEmpty
    min: int = Field(ge=1)


_MACRO_VAR = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")


class ProtectedSelector(Model):
    """Accounts protected for what they are, not by name: a CEL expression over the live
    account, e.g. ``user.userType == "service"`` or ``"super-admin" in user.roles``. It sees
    ``user.userName``, ``externalId``, ``displayName``, ``title``, ``userType``, ``active``,
    and the values of ``emails``, ``roles`` and ``entitlements`` (lists of strings)."""

    selector: NonEmpty

    @field_validator("selector")
    @classmethod
    def _compiles(cls, v: str) -> str:
        import cel  # only when a selector is written

        try:
            program = cel.compile(v)
        except (ValueError, RuntimeError) as exc:
            first = str(exc).split("\n", 1)[0].replace(" | ", " ")
            first = first.replace("Failed to parse expression", "CEL syntax error in")
            raise ValueError(
                f'protected selector: {first} | fix the expression, e.g. user.userType == "service"'
            ) from None
        bound = set(_MACRO_VAR.findall(v))
        unknown = [x for x in program.variables() if x != "user" and x not in bound]
        if unknown:
            raise ValueError(
                f"protected selector uses unknown variable {unknown[0]!r} | a selector sees "
                "only user (the live account), e.g. user.userName"
            )
        # Tried on an account with every field empty: a misspelt field would fail for every
        # account, and a selector that cannot be evaluated protects (fails closed): it
        # would silently protect everyone. A result that is not a boolean protects nobody.
        blank: dict[str, object] = dict.fromkeys(_SELECTOR_TEXT, "")
        blank |= {key: [] for key in _SELECTOR_LISTS}
        try:
            result = program.execute(cel.Context({"user": {**blank, "active": True}}))
        except KeyError as exc:
            fields = ", ".join(sorted([*_SELECTOR_TEXT, *_SELECTOR_LISTS, "active"]))
            raise ValueError(
                f"protected selector reads user.{exc.args[0]}, which an account does not have "
                f"| a selector sees user.{{{fields}}}"
            ) from None
        except (LookupError, TypeError, ValueError, RuntimeError, ArithmeticError):
            return v  # depends on the values: decided per account
        if not isinstance(result, bool):
            raise ValueError(
                f"protected selector gives {type(result).__name__}, not true or false "
                '| write a condition, e.g. user.title == "Break glass"'
            )
        return v


_SELECTOR_TEXT = ("userName", "externalId", "displayName", "title", "userType")
_SELECTOR_LISTS = ("emails", "roles", "entitlements")


# A userName, or {selector: …}: told apart by shape, so an error names one of them only.
Protected = Annotated[
    Annotated[NonEmpty, Tag("userName")] | Annotated[ProtectedSelector, Tag("selector")],
    Discriminator(lambda v: "userName" if isinstance(v, str) else "selector"),
]


class Tenant(Model):
    """``tenant.yaml``: where the tenant is and how the reconciler treats it."""

    url: str = Field(
        description="SCIM base URL (https://…) or local:<path> for the embedded tenant."
    )
    profile: Profile = Profile.generic
    auth: Auth = Auth()
    matching: Matching = Matching()
    ownership: Ownership = Ownership()
    lifecycle: Lifecycle = Lifecycle()
    safety: Safety = Safety()
    protected: list[Protected] = Field(
        default_factory=list,
        description="Accounts never suspended, deleted, renamed or stripped of grants: "
        "userNames, or {selector: CEL over the live account}.",
    )
    min_holders: list[MinHolders] = Field(
        default_factory=list, description="Grants that must keep at least N holders."
    )
    verified_domains: list[NonEmpty] = Field(
        default_factory=list, description="Email domains users may have (GoTo requires it)."
    )
    rate_limit: float | None = Field(
        None, gt=0, description="Requests per second; the profile's default when absent."
    )

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if v.startswith("local:"):
            if not v[len("local:") :]:
                raise ValueError("local: needs a path | write local:<path to the tenant database>")
            return v
        if not re.match(r"^https?://[^\s/]+", v, re.IGNORECASE):  # HTTPS:// is https://
            raise ValueError("not a tenant URL | write an http(s):// SCIM base URL or local:<path>")
        try:
            parts = urlsplit(v)
            parts.port  # noqa: B018 (read for its check: a port that is not a number)
        except ValueError:
            raise ValueError(
                "not a tenant URL: its host or port cannot be read | write "
                "https://host[:port]/path, an IPv6 host in brackets: https://[::1]:8443/scim/v2"
            ) from None
        if not parts.hostname:
            raise ValueError("not a tenant URL: it names no host | write https://host/path")
        return v

    @field_validator("verified_domains")
    @classmethod
    def _lower_domains(cls, v: list[str]) -> list[str]:
        return [d.lower() for d in v]


# --------------------------------------------------------------------------- attributes.yaml


class AttrType(StrEnum):
    string = "string"
    boolean = "boolean"
    integer = "integer"
    decimal = "decimal"
    dateTime = "dateTime"
    reference = "reference"


class ScimLocation(Model):
    """Where a custom attribute lives in SCIM: ``core``, the enterprise extension, or a URN."""

    schema_: Annotated[str, Field(alias="schema")] = Field(
        ENTERPRISE_USER, description="core, enterprise, or an extension URN."
    )
    path: str | None = Field(None, description="Attribute path in that schema; the name if absent.")

    @field_validator("schema_")
    @classmethod
    def _schema(cls, v: str) -> str:
        if v == "core":
            return CORE_USER
        if v == "enterprise":
            return ENTERPRISE_USER
        if not re.match(r"^urn:[A-Za-z0-9][A-Za-z0-9-]{0,31}:\S+$", v):
            raise ValueError(
                f"unknown schema {v!r} | write core, enterprise, or an extension URN (urn:…)"
            )
        return v


class Attribute(Model):
    """A custom attribute (GoTo custom field, enterprise field, or vendor extension)."""

    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")]
    type: AttrType = AttrType.string
    multi_valued: Bool = False
    required: Bool = False
    allowed_values: list[str | int | float | bool] | None = None
    case_exact: Bool = False
    sensitive: Bool = Field(
        False, description="Masked in PR comments, policy messages and receipts."
    )
    description: str | None = None
    scim: ScimLocation = ScimLocation()

    @property
    def scim_path(self) -> str:
        return self.scim.path or self.name


class AttributesFile(Model):
    attributes: list[Attribute] = Field(default_factory=list)


# --------------------------------------------------------------------------- rules.yaml

ConditionOp = Literal["eq", "ne", "in", "not_in", "exists", "absent", "starts_with", "ends_with"]


class Condition(Model):
    """An attribute condition: ``{attribute: department, op: eq, value: Sales}``."""

    attribute: NonEmpty
    op: ConditionOp = "eq"
    value: Any = None

    @model_validator(mode="after")
    def _value_fits_op(self) -> Condition:
        if self.op in ("exists", "absent"):
            if self.value is not None:
                raise ValueError(f"op '{self.op}' takes no value | remove value")
        elif self.op in ("in", "not_in"):
            if not isinstance(self.value, list):
                raise ValueError(f"op '{self.op}' needs a list | value: [Sales, Support]")
        elif self.value is None or isinstance(self.value, list | dict):
            raise ValueError(f"op '{self.op}' needs a single value | value: Sales")
        return self


class Match(Model):
    """Which users a rule applies to: group membership plus optional conditions (all must hold)."""

    groups_any: list[NonEmpty] = Field(default_factory=list, description="In at least one.")
    groups_all: list[NonEmpty] = Field(default_factory=list, description="In every one.")
    conditions: list[Condition] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something(self) -> Match:
        if not (self.groups_any or self.groups_all or self.conditions):
            raise ValueError(
                "a rule must match on something | add groups_any, groups_all or conditions"
            )
        return self


SINGLE_GRANTS = ("role", "userGroup", "settingsTemplate")
MULTI_GRANTS = ("products", "deviceGroups", "roles", "entitlements")


class Grants(Model):
    """What a rule grants. Single-valued grants come from the highest-priority matching rule;
    multi-valued grants are merged over every matching rule."""

    role: NonEmpty | None = None
    userGroup: NonEmpty | None = None
    settingsTemplate: NonEmpty | None = None
    products: list[NonEmpty] = Field(default_factory=list)
    deviceGroups: list[NonEmpty] = Field(default_factory=list)
    roles: list[NonEmpty] = Field(default_factory=list)
    entitlements: list[NonEmpty] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something(self) -> Grants:
        if not any(getattr(self, k) for k in (*SINGLE_GRANTS, *MULTI_GRANTS)):
            raise ValueError(
                "a rule must grant something | add one of: "
                + ", ".join(SINGLE_GRANTS + MULTI_GRANTS)
            )
        return self


class Rule(Model):
    """A User Sync rule. ``priority`` 1 is the highest (GoTo's rule #1 beats rule #2)."""

    name: NonEmpty
    priority: int = Field(ge=1, description="Unique; lower numbers win single-valued grants.")
    description: str | None = None
    match: Match
    grants: Grants


class RulesFile(Model):
    rules: list[Rule] = Field(default_factory=list)


# --------------------------------------------------------------------------- users and groups


class Name(Model):
    givenName: str | None = None
    familyName: str | None = None
    middleName: str | None = None
    honorificPrefix: str | None = None
    honorificSuffix: str | None = None
    formatted: str | None = None


class Email(Model):
    value: Annotated[str, StringConstraints(pattern=EMAIL)]
    type: Literal["work", "home", "other"] = "work"
    primary: Bool = False


class PhoneNumber(Model):
    value: NonEmpty
    type: NonEmpty = "work"
    primary: Bool = False


def _email_shorthand_schema(schema: dict[str, Any]) -> None:
    # The JSON Schema must accept what the loader accepts, or editors flag every
    # `emails: [alice@example.com]` line of a valid file.
    schema["items"] = {"anyOf": [{"type": "string", "pattern": EMAIL}, schema["items"]]}


class User(Model):
    """A user, in SCIM attribute names. ``groups`` lists group displayNames; ``attributes``
    holds custom attributes declared in attributes.yaml; ``manager`` is a userName."""

    userName: NonEmpty
    externalId: NonEmpty | None = None
    name: Name | None = None
    displayName: str | None = None
    nickName: str | None = None
    title: str | None = None
    userType: str | None = None
    preferredLanguage: str | None = None
    locale: str | None = None
    timezone: str | None = None
    active: Bool = True
    emails: list[Email] = Field(
        default_factory=list,
        description="Addresses; a plain string is short for {value: …, type: work}, the first "
        "one primary.",
        json_schema_extra=_email_shorthand_schema,
    )
    phoneNumbers: list[PhoneNumber] = Field(default_factory=list)
    manager: NonEmpty | None = Field(None, description="The manager's userName.")
    groups: list[NonEmpty] = Field(default_factory=list)
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("emails", mode="before")
    @classmethod
    def _email_shorthand(cls, v: Any) -> Any:
        # `emails: [alice@example.com]` is short for one primary work address.
        if isinstance(v, list):
            return [
                {"value": e, "type": "work", "primary": i == 0} if isinstance(e, str) else e
                for i, e in enumerate(v)
            ]
        return v


class Group(Model):
    """A group. Members may be listed here (by userName) or on the users; see the README."""

    displayName: NonEmpty
    externalId: NonEmpty | None = None
    description: str | None = None
    members: list[NonEmpty] = Field(default_factory=list)


class UsersFile(Model):
    users: list[User] = Field(default_factory=list)


class GroupsFile(Model):
    groups: list[Group] = Field(default_factory=list)


class Document(Model):
    """Any desired-state file other than tenant.yaml: one or more of these sections."""

    users: list[User] = Field(default_factory=list)
    groups: list[Group] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    attributes: list[Attribute] = Field(default_factory=list)


SECTIONS = ("users", "groups", "rules", "attributes")
