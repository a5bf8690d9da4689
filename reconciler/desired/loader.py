"""Load a desired-state directory into a validated :class:`DesiredState`.

Any number of YAML files: ``tenant.yaml`` at the top, and any other ``*.yaml`` below holding one
or more sections (``users``, ``groups``, ``rules``, ``attributes``). Hidden files and folders
(``.schemas/``) are skipped. Every problem in every file is collected before returning.
"""

from __future__ import annotations

import difflib
import errno
import hashlib
import re
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from reconciler.desired import checks
from reconciler.desired.models import SECTIONS, Attribute, Document, Group, Rule, Tenant, User
from reconciler.desired.state import DesiredState, Source
from reconciler.desired.yamlsource import (
    DuplicateKey,
    PositionIndex,
    YamlProblem,
    decode,
    parse,
)
from reconciler.diagnostics import Diagnostic, Severity, display_path
from reconciler.gcpause import no_gc_pauses
from reconciler.urls import has_query

TENANT_FILE = "tenant.yaml"
_SECTION_MODEL: dict[str, type[BaseModel]] = {
    "users": User,
    "groups": Group,
    "rules": Rule,
    "attributes": Attribute,
}
_DOCUMENT = TypeAdapter(Document)
_TENANT = TypeAdapter(Tenant)
_ITEM = {k: TypeAdapter(m) for k, m in _SECTION_MODEL.items()}

# Keys that would hold a secret if someone wrote one into tenant.yaml.
_SECRET_KEYS = {
    "token": "token_env",
    "bearer": "token_env",
    "access_token": "token_env",
    "password": "token_env",
    "api_key": "token_env",
    "client_secret": "client_secret_env",
    "secret": "client_secret_env",
    "client_id": "client_id_env",
}


@dataclass
class LoadResult:
    state: DesiredState | None
    diagnostics: list[Diagnostic] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.state is not None and not any(
            d.severity is Severity.error for d in self.diagnostics
        )


@dataclass
class SourceFile:
    path: Path
    text: str
    _index: PositionIndex | None = None

    def position(self, loc: Sequence[str | int], *, key: bool = False) -> tuple[int, int]:
        if self._index is None:
            self._index = PositionIndex.of(self.text)
        return self._index.locate(loc, key=key)


class Collector:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.diags: list[Diagnostic] = []
        # Casefolded names of entries declared but invalid, and left out of the state (not
        # even salvaged without their bad keys).
        self.invalid_names: set[str] = set()

    def add(
        self,
        file: SourceFile | Path,
        loc: Sequence[str | int],
        message: str,
        hint: str = "",
        *,
        key: bool = False,
        severity: Severity = Severity.error,
        line_col: tuple[int, int] | None = None,
    ) -> None:
        path = file.path if isinstance(file, SourceFile) else file
        if line_col is None:
            line_col = file.position(loc, key=key) if isinstance(file, SourceFile) else (0, 0)
        self.diags.append(
            Diagnostic(display_path(path), *line_col, message, hint, severity=severity)
        )


def _loc_text(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _allowed_keys(model: type[BaseModel] | None) -> list[str]:
    if model is None:
        return []
    return [f.alias or name for name, f in model.model_fields.items()]


def _model_at(root_model: type[BaseModel], loc: Sequence[str | int]) -> type[BaseModel] | None:
    """The pydantic model whose fields apply at ``loc`` (for "allowed keys" hints)."""
    model: Any = root_model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return None
        f = next(
            (fi for n, fi in model.model_fields.items() if part in (n, fi.alias)),
            None,
        )
        if f is None:
            return None
        model = _inner_model(f.annotation)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _inner_model(annotation: Any) -> Any:
    for arg in getattr(annotation, "__args__", ()) or ():
        inner = _inner_model(arg)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return inner
    return annotation


# Parts of a pydantic error location that are not in the data: the member of a union that
# was tried ("str", "int", …), a dict key marker, a validator's name.
_UNION_TAGS = {"str", "int", "float", "bool", "none"}
# Where a value may be a secret (tenant.yaml): never echoed in a message.
_SECRET_PARTS = ("auth", "url", "token", "secret", "password", "_env")


def _data_loc(loc: Sequence[str | int]) -> tuple[tuple[str | int, ...], bool]:
    """The location in the data, and whether the error is about a mapping key."""
    out: list[str | int] = []
    at_key = False
    for p in loc:
        if isinstance(p, str) and (p.startswith("function-") or p in _UNION_TAGS):
            continue
        if p == "[key]":
            at_key = True
            continue
        out.append(p)
    return tuple(out), at_key


def _shown(value: Any, secret: bool) -> str:
    """How a wrong value is named in a message: its type, and a scalar's (short) text."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if secret:
        return f"a {type(value).__name__}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def report_validation_error(
    col: Collector,
    f: SourceFile,
    exc: ValidationError,
    root_model: type[BaseModel],
    prefix: tuple[str | int, ...],
) -> None:
    """Turn pydantic's errors into diagnostics: what is wrong in words, and what to write."""
    errors = exc.errors(include_url=False)
    places = [_data_loc(e["loc"])[0] for e in errors]
    seen: set[tuple[str | int, ...]] = set()
    for err in errors:
        loc, at_key = _data_loc(err["loc"])
        if loc in seen:
            continue  # one message per place, not one per member of a union tried
        seen.add(loc)
        full = prefix + loc
        kind = err["type"]
        value = err.get("input")
        # Within an item (users[3]), name the item when the problem is the item itself.
        name = _loc_text(loc) or _loc_text(prefix) or "the file"
        secret = any(s in str(p) for p in full for s in _SECRET_PARTS)
        union = places.count(loc) > 1
        if kind == "extra_forbidden":
            key = str(loc[-1])
            model = _model_at(root_model, loc[:-1])
            allowed = _allowed_keys(model)
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            if model is User and not close:
                hint += "custom attributes go under 'attributes:'; "
            hint += f"allowed keys here: {', '.join(allowed)}" if allowed else ""
            col.add(f, full, f"unknown key '{key}'", hint, key=True)
        elif kind == "missing":
            col.add(
                f,
                full[:-1],
                f"missing required key '{loc[-1]}'",
                f"add '{loc[-1]}:' to {_loc_text(full[:-1]) or 'the file'}",
            )
        elif kind == "value_error":
            what, _, instead = err["msg"].removeprefix("Value error, ").partition(" | ")
            col.add(f, full, what, instead)
        elif kind == "invalid_key" or at_key:
            col.add(
                f,
                full,
                f"key {value!r} must be a string",
                f"quote the key: '{value}'",
                key=True,
            )
        elif kind.startswith("string_pattern") and loc and str(loc[-1]).endswith("_env"):
            col.add(
                f,
                full,
                f"'{loc[-1]}' must name an environment variable, such as SCIM_TOKEN",
                "write the variable's name, never its value: secrets stay out of git",
            )
        elif kind.startswith("string_pattern") and loc[-1:] == ("value",) and "emails" in loc:
            col.add(f, full, f"not an email address: {value!r}", "write name@domain.tld")
        elif value is None and kind.endswith("_type"):
            col.add(
                f,
                full,
                f"{name} is empty",
                "write a value, or remove the key" if loc else "remove the empty '- ' entry",
            )
        elif union:
            col.add(
                f,
                full,
                f"{name} must be a single value (text, number, true or false), not "
                + _shown(value, secret),
                "write one plain value per entry",
            )
        elif kind in _EXPECTED:
            expected, hint = _EXPECTED[kind]
            if kind in ("dict_type", "model_type"):
                keys = _allowed_keys(_model_at(root_model, loc))
                hint = f"keys here: {', '.join(keys)}" if keys else hint
            elif kind == "list_type" and isinstance(value, str | int | float) and not secret:
                hint = f"write [{value}] for one entry, or one '- item' per line"
            elif kind == "list_type" and loc and isinstance(loc[-1], str):
                # A mapping where a list belongs: show the list, under the key as written.
                example = "name@domain.tld" if loc[-1] == "emails" else "a, b"
                hint = f"write a list: {loc[-1]}: [{example}], or one '- item' per line"
            elif isinstance(value, dict | list):
                hint = "write one plain value here"
            elif kind == "bool_type" and isinstance(value, str):
                hint = "write true or false, unquoted (YAML reads yes, no, on and off as text)"
            col.add(f, full, f"{name} must be {expected}, not {_shown(value, secret)}", hint)
        elif kind in _BOUNDS:
            word, instead = _BOUNDS[kind]
            bound = next(iter((err.get("ctx") or {}).values()), "")
            bound = int(bound) if isinstance(bound, float) and bound.is_integer() else bound
            col.add(
                f,
                full,
                f"{name} must be {word} {bound}" + ("" if secret else f", not {value!r}"),
                instead.format(bound),
            )
        elif kind == "string_too_short":
            col.add(f, full, f"{name} cannot be empty", "write a value, or remove the key")
        elif kind in ("enum", "literal_error"):
            expected = str((err.get("ctx") or {}).get("expected", ""))
            options = re.findall(r"'([^']*)'", expected)
            close = [] if secret else difflib.get_close_matches(str(value), options, n=1)
            col.add(
                f,
                full,
                f"{name} must be one of {expected}" + ("" if secret else f", not {value!r}"),
                (f"did you mean '{close[0]}'? " if close else "") + "use one of these values",
            )
        elif kind.startswith("string_pattern") and loc[-1:] == ("name",):
            col.add(
                f,
                full,
                f"{value!r} is not a valid name",
                "start with a letter, then letters, digits, '_', '.' or '-'",
            )
        else:
            col.add(
                f,
                full,
                f"{_loc_text(loc) or name}: {err['msg']}",
                _hint_for(kind)
                or (
                    f"see what is allowed here: reconciler schema --kind {_SCHEMA_KIND[root_model]}"
                    if root_model in _SCHEMA_KIND
                    else "see the README for what this key accepts"
                ),
            )


# pydantic error type → (what was expected, what to write).
_EXPECTED: dict[str, tuple[str, str]] = {
    "string_type": ("a string", "quote the value to make it a string"),
    "list_type": ("a list", "write [a, b], or one '- item' per line"),
    "dict_type": ("a mapping", "write key: value lines"),
    "model_type": ("a mapping", "write key: value lines"),
    "model_attributes_type": ("a mapping", "write key: value lines"),
    "bool_type": ("true or false", "write true or false"),
    "bool_parsing": ("true or false", "write true or false"),
    "int_type": ("a whole number", "write a whole number, e.g. 10"),
    "int_parsing": ("a whole number", "write a whole number, e.g. 10"),
    "int_from_float": ("a whole number", "write a whole number, e.g. 10"),
    "float_type": ("a number", "write a number, e.g. 2.5"),
    "float_parsing": ("a number", "write a number, e.g. 2.5"),
}
_BOUNDS = {
    "greater_than_equal": ("at least", "write {} or more"),
    "greater_than": ("greater than", "write a number above {}"),
    "less_than_equal": ("at most", "write {} or less"),
    "less_than": ("less than", "write a number below {}"),
}


_SCHEMA_KIND: dict[type[BaseModel], str] = {
    Tenant: "tenant",
    User: "users",
    Group: "groups",
    Rule: "rules",
    Attribute: "attributes",
}


def _hint_for(kind: str) -> str:
    return {
        "enum": "use one of the values listed",
        "literal_error": "use one of the values listed",
    }.get(kind, "")


def _secret_problems(col: Collector, f: SourceFile, raw: dict[str, Any]) -> dict[str, Any]:
    """Refuse literal secrets in tenant.yaml without ever echoing them; drop them from ``raw``
    so the schema check does not report them a second time."""
    auth = raw.get("auth")
    if isinstance(auth, dict):
        for k in list(auth):
            if isinstance(k, str) and k.lower() in _SECRET_KEYS:
                want = _SECRET_KEYS[k.lower()]
                col.add(
                    f,
                    ("auth", k),
                    f"a literal secret ('{k}') is not allowed in tenant.yaml",
                    f"put it in an environment variable and write '{want}: VARIABLE_NAME'; "
                    "rotate the secret if it was ever committed",
                    key=True,
                )
                auth = {kk: vv for kk, vv in auth.items() if kk != k}
        raw = {**raw, "auth": auth}
    url = raw.get("url")
    if isinstance(url, str) and "@" in url.split("//", 1)[-1].split("/", 1)[0]:
        col.add(
            f,
            ("url",),
            "the tenant URL carries credentials (user:password@)",
            "remove them from the URL and use auth: with token_env or client_secret_env",
        )
        raw = {**raw, "url": "https://redacted.invalid"}
    elif isinstance(url, str) and has_query(url):
        col.add(
            f,
            ("url",),
            "the tenant URL has a query string, fragment or ;parameters",
            "write the SCIM base URL alone (e.g. https://host/scim/v2) and use auth: with "
            "token_env; rotate the token if the URL carried one",
        )
        raw = {**raw, "url": "https://redacted.invalid"}
    return raw


def read_yaml(col: Collector, path: Path, data: bytes) -> tuple[SourceFile | None, Any]:
    try:
        text = decode(data)
    except YamlProblem as p:
        col.add(path, (), p.message, p.hint, line_col=(p.line, p.col))
        return None, None
    f = SourceFile(path, text)
    if not text.strip() or all(
        not ln.strip() or ln.lstrip().startswith("#") for ln in text.splitlines()
    ):
        return f, None
    duplicates: list[DuplicateKey] = []
    try:
        raw = parse(text, duplicates)
    except YamlProblem as p:
        col.add(path, (), p.message, p.hint, line_col=(p.line, p.col))
        return None, None
    # Reported, and the rest of the file is still checked (with the first value of each).
    for d in duplicates:
        col.add(
            path,
            (),
            f"duplicate key {str(d.key)!r} (first declared at {display_path(path)}:{d.first_line})",
            "each key may appear once in a mapping; merge the two entries",
            line_col=(d.line, d.col),
        )
        # A name in the value left out (a userName given twice, a section given twice) is
        # declared, not unknown: references to it are not reported too.
        col.invalid_names.update(n.casefold() for n in _names_in(d.key, d.dropped))
    return f, raw


def _names_in(key: Any, value: Any) -> list[str]:
    """The names declared by a value left out: a userName (displayName, name) given twice,
    or the entries of a section given twice."""
    if key in _NAME_KEY.values() and isinstance(value, str):
        return [value]
    if key in _NAME_KEY and isinstance(value, list):
        names = (_declared_name(item, _NAME_KEY[key]) for item in value)
        return [name for name in names if name]
    return []


def _load_tenant(
    col: Collector, root: Path, data: bytes | None
) -> tuple[Tenant | None, SourceFile | None]:
    path = root / TENANT_FILE
    if data is None:
        col.add(
            root,
            (),
            f"no {TENANT_FILE} in this directory",
            "a desired-state directory starts with tenant.yaml (url, profile, auth); "
            "see desired-state/tenant.yaml in the reconciler repository for an example",
        )
        return None, None
    f, raw = read_yaml(col, path, data)
    if f is None:
        return None, None
    if raw is None:
        col.add(
            path, (), "tenant.yaml is empty", "write at least 'url: local:.reconciler/tenant.db'"
        )
        return None, f
    if not isinstance(raw, dict):
        col.add(f, (), "tenant.yaml must be a mapping of settings", "start with 'url: …'")
        return None, f
    raw = _secret_problems(col, f, raw)
    try:
        return _TENANT.validate_python(raw), f
    except ValidationError as exc:
        report_validation_error(col, f, exc, Tenant, ())
        # The settings that did validate (verified domains, say) still check the other files.
        return _salvage(_TENANT, raw, exc, {"url": "local:unset"}), f


# What other entries refer to an entry of each section by.
_NAME_KEY = {"users": "userName", "groups": "displayName", "rules": "name", "attributes": "name"}


def _salvage(
    adapter: TypeAdapter[Any],
    raw: Any,
    exc: ValidationError,
    defaults: Mapping[str, Any] | None = None,
) -> Any:
    """``raw`` validated without the top-level keys its errors are about (each one already
    reported; ``defaults`` stand in for those), or None when that fails too (e.g. a required
    key was the one that failed). Only for the cross-checks of a state that is invalid anyway:
    never planned or applied."""
    errors = exc.errors()
    if not isinstance(raw, dict) or any(not e["loc"] for e in errors):
        return None  # an error about the entry as a whole: nothing to leave out
    failing = {e["loc"][0] for e in errors}
    kept = {k: v for k, v in raw.items() if k not in failing}
    try:
        return adapter.validate_python({**(defaults or {}), **kept})
    except ValidationError:
        return None


def _declared_name(item: Any, key: str) -> str:
    """The name an invalid entry declares, also under a misspelt key (``usrName:``), so that
    references to it are not reported as unknown too; ``""`` when it has none."""
    if not isinstance(item, dict):
        return ""
    name = item.get(key)
    if name is None:
        spelt = [k for k in item if isinstance(k, str)]
        close = difflib.get_close_matches(key, spelt, n=1, cutoff=0.75)
        name = item[close[0]] if close else None
    return name if isinstance(name, str) else ""


def _load_document(col: Collector, f: SourceFile, raw: Any) -> Document:
    if raw is None:
        col.add(
            f,
            (),
            "the file is empty",
            "add a section (users:, groups:, rules: or attributes:) or delete the file",
            severity=Severity.warning,
        )
        return Document()
    if not isinstance(raw, dict):
        col.add(
            f,
            (),
            "a desired-state file must be a mapping",
            f"start with one of: {', '.join(SECTIONS)}",
        )
        return Document()
    for key in raw:
        if key not in SECTIONS:
            close = difflib.get_close_matches(str(key), SECTIONS, n=1)
            col.add(
                f,
                (key,),
                f"unknown section '{key}'",
                (f"did you mean '{close[0]}'? " if close else "")
                + f"sections are: {', '.join(SECTIONS)}",
                key=True,
            )
            if close:
                # A misspelt section ('user:') still declares its entries: references to
                # them are not reported as unknown too.
                col.invalid_names.update(n.casefold() for n in _names_in(close[0], raw[key]))
    try:
        return _DOCUMENT.validate_python({k: v for k, v in raw.items() if k in SECTIONS})
    except ValidationError:
        pass
    # Validate item by item, so the good items still take part in cross-reference checks and
    # one typo does not cascade into "unknown group" errors elsewhere.
    parts: dict[str, list[Any]] = {}
    for section in SECTIONS:
        items = raw.get(section)
        if items is None:
            continue
        if not isinstance(items, list):
            col.add(
                f,
                (section,),
                f"'{section}' must be a list",
                "write one '- ' item per entry",
                key=True,
            )
            continue
        good: list[BaseModel | None] = []
        for i, item in enumerate(items):
            try:
                good.append(_ITEM[section].validate_python(item))
            except ValidationError as exc:
                report_validation_error(col, f, exc, _SECTION_MODEL[section], (section, i))
                # Without the keys that failed (reported above), the entry may still take
                # part in the cross-checks: one typo does not hide the errors elsewhere.
                salvaged = _salvage(_ITEM[section], item, exc)
                good.append(salvaged)
                name = "" if salvaged is not None else _declared_name(item, _NAME_KEY[section])
                if name:
                    col.invalid_names.add(name.casefold())
        parts[section] = good
    # Not validated as a whole: ``None`` stands for an item that failed, keeping indexes aligned.
    return Document.model_construct(None, **parts)


# A cache of validated documents by file content, shared across loads (history walks many
# commits in which most files did not change). Only documents without problems are cached.
DocumentCache = MutableMapping[bytes, Document]


def load(root: Path) -> LoadResult:
    """Load and check ``root``. Never raises for bad input: problems come back as diagnostics."""
    if not root.is_dir():
        col = Collector(root)
        if root.exists():
            col.add(
                root,
                (),
                "this is a file; validate takes the directory that holds tenant.yaml",
                f"reconciler validate {display_path(root.parent)}",
            )
        else:
            col.add(
                root,
                (),
                "no such directory",
                "pass the desired-state directory, e.g. reconciler validate desired-state",
            )
        return LoadResult(None, col.diags)
    files: dict[Path, bytes] = {}
    unreadable: dict[Path, OSError] = {}
    tenant = root / TENANT_FILE
    present = tenant.is_file() or tenant.is_symlink()
    for path in [tenant, *_yaml_files(root)] if present else _yaml_files(root):
        try:
            files[path] = path.read_bytes()
        except OSError as exc:
            unreadable[path] = exc
    return load_files(root, files, unreadable=unreadable)


def read_error(exc: OSError) -> tuple[str, str]:
    """What went wrong reading a file, and what to do about it (never a traceback)."""
    reason = exc.strerror or exc.__class__.__name__
    if exc.errno in (errno.EACCES, errno.EPERM):
        return f"cannot read: {reason}", "make the file readable by this user (chmod a+r)"
    if exc.errno == errno.ENOENT:
        return (
            "cannot read: a symbolic link to a file that does not exist",
            "point the link at a file, or remove it",
        )
    if exc.errno == errno.EISDIR:
        return f"cannot read: {reason}", "rename the directory: *.yaml names files"
    return f"cannot read: {reason}", "check that this is a regular file on a working disk"


def load_files(
    root: Path,
    contents: Mapping[Path, bytes],
    cache: DocumentCache | None = None,
    *,
    unreadable: Mapping[Path, OSError] | None = None,
) -> LoadResult:
    """Load and check a desired state given as file contents (``root / relative`` → bytes),
    e.g. read from git blobs. ``cache`` reuses validated documents by content. ``unreadable``
    names files that exist but could not be read: each is reported, and references that
    such a file may have declared are not reported as unknown."""
    with no_gc_pauses():
        return _load_files(root, contents, cache, unreadable or {})


def _load_files(
    root: Path,
    contents: Mapping[Path, bytes],
    cache: DocumentCache | None,
    unreadable: Mapping[Path, OSError],
) -> LoadResult:
    col = Collector(root)
    failed: list[str] = []  # files that could not be read at all
    for path, exc in sorted(unreadable.items()):
        col.add(path, (), *read_error(exc))
        if path != root / TENANT_FILE:
            failed.append(display_path(path))
    if root / TENANT_FILE in unreadable:
        tenant, tenant_file = None, None
    else:
        tenant, tenant_file = _load_tenant(col, root, contents.get(root / TENANT_FILE))
    files: dict[Path, SourceFile] = {}
    if tenant_file is not None:
        files[tenant_file.path] = tenant_file

    users: list[User] = []
    groups: list[Group] = []
    rules: list[Rule] = []
    attributes: list[Attribute] = []
    sources: dict[str, list[Source]] = {s: [] for s in SECTIONS}
    targets: dict[str, list[Any]] = {
        "users": users,
        "groups": groups,
        "rules": rules,
        "attributes": attributes,
    }
    for path in sorted(contents):
        if path == root / TENANT_FILE:
            continue
        data = contents[path]
        key = hashlib.blake2b(data, digest_size=20).digest()
        doc = cache.get(key) if cache is not None else None
        if doc is None:
            before = len(col.diags)
            f, raw = read_yaml(col, path, data)
            if f is None:
                failed.append(display_path(path))
                continue
            files[path] = f
            doc = _load_document(col, f, raw)
            if cache is not None and len(col.diags) == before:
                cache[key] = doc
        else:
            files[path] = SourceFile(path, data.decode("utf-8-sig"))
        for section in SECTIONS:
            for i, obj in enumerate(getattr(doc, section)):
                if obj is not None:
                    targets[section].append(obj)
                    sources[section].append(Source(path, (section, i)))

    state = DesiredState(
        root=root,
        # With an invalid tenant.yaml the other files are still checked against each other;
        # only the checks that need tenant settings (verified domains) are skipped.
        tenant=tenant or Tenant(url="local:unset"),
        users=tuple(users),
        groups=tuple(groups),
        rules=tuple(rules),
        attributes=tuple(attributes),
        user_sources=tuple(sources["users"]),
        group_sources=tuple(sources["groups"]),
        rule_sources=tuple(sources["rules"]),
        attribute_sources=tuple(sources["attributes"]),
        tenant_source=root / TENANT_FILE,
    )
    for finding in checks.check(state):
        if failed and checks.cascading(finding.message):
            continue  # the declaration may be in the file that could not be read
        if finding.ref and finding.ref.casefold() in col.invalid_names:
            continue  # declared, but invalid: its own error says what to fix
        f_or_path: SourceFile | Path = files.get(finding.source.file) or finding.source.file
        message = finding.message
        if finding.related is not None:
            other, sub = finding.related
            other_file = files.get(other.file)
            line, _ = other_file.position(other.path + sub) if other_file else (0, 0)
            message += f" (first declared at {display_path(other.file)}:{line})"
        col.add(
            f_or_path,
            finding.source.path + finding.subpath,
            message,
            finding.hint,
            key=finding.at_key,
            severity=Severity(finding.severity),
        )
    if failed:
        others = (
            "this file could not be read"
            if len(failed) == 1
            else f"{len(failed)} files could not be read (this one and others)"
        )
        col.diags.append(
            Diagnostic(
                failed[0],
                0,
                0,
                f"references to groups, users and attributes were not checked: {others}, "
                "and may declare some of them",
                "fix the errors reported for the unreadable files, then validate again",
                severity=Severity.warning,
            )
        )
    return LoadResult(state if tenant else None, sorted(col.diags, key=_order))


def _order(d: Diagnostic) -> tuple[str, int, int, str]:
    return (d.file, d.line, d.col, d.message)


def _yaml_files(root: Path) -> list[Path]:
    out = []
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        # A link to nowhere is listed too, so it is reported instead of silently skipped.
        dangling = p.is_symlink() and not p.exists()
        if p.suffix in (".yaml", ".yml") and (p.is_file() or dangling) and rel != Path(TENANT_FILE):
            out.append(p)
    return out
