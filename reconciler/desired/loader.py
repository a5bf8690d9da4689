"""Load a desired-state directory into a validated :class:`DesiredState`.

Any number of YAML files: ``tenant.yaml`` at the top, and any other ``*.yaml`` below holding one
or more sections (``users``, ``groups``, ``rules``, ``attributes``). Hidden files and folders
(``.schemas/``) are skipped. Every problem in every file is collected before returning.
"""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from reconciler.desired import checks
from reconciler.desired.models import SECTIONS, Attribute, Document, Group, Rule, Tenant, User
from reconciler.desired.state import DesiredState, Source
from reconciler.desired.yamlsource import PositionIndex, YamlProblem, decode, parse
from reconciler.diagnostics import Diagnostic, Severity, display_path

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


def report_validation_error(
    col: Collector,
    f: SourceFile,
    exc: ValidationError,
    root_model: type[BaseModel],
    prefix: tuple[str | int, ...],
) -> None:
    for err in exc.errors(include_input=False, include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        full = prefix + loc
        kind = err["type"]
        if kind == "extra_forbidden":
            name = str(loc[-1])
            allowed = _allowed_keys(_model_at(root_model, loc[:-1]))
            close = difflib.get_close_matches(name, allowed, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            hint += f"allowed keys here: {', '.join(allowed)}" if allowed else ""
            col.add(f, full, f"unknown key '{name}'", hint, key=True)
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
        elif kind.startswith("string_pattern") and loc and str(loc[-1]).endswith("_env"):
            col.add(
                f,
                full,
                f"'{loc[-1]}' must name an environment variable, such as SCIM_TOKEN",
                "write the variable's name, never its value: secrets stay out of git",
            )
        elif kind.startswith("string_pattern") and loc[-1:] == ("value",) and "emails" in loc:
            col.add(f, full, "not an email address", "write name@domain.tld")
        else:
            col.add(f, full, f"{_loc_text(loc)}: {err['msg']}", _hint_for(kind))


def _hint_for(kind: str) -> str:
    return {
        "enum": "use one of the values listed",
        "literal_error": "use one of the values listed",
        "list_type": "write a YAML list (- item per line, or [a, b])",
        "dict_type": "write a mapping (key: value lines)",
        "model_type": "write a mapping (key: value lines)",
        "string_type": "quote the value to make it a string",
        "bool_type": "write true or false",
        "bool_parsing": "write true or false",
        "int_type": "write a whole number",
        "int_parsing": "write a whole number",
        "greater_than_equal": "use a larger number",
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
    try:
        return f, parse(text)
    except YamlProblem as p:
        col.add(path, (), p.message, p.hint, line_col=(p.line, p.col))
        return None, None


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
        return None, f


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
                good.append(None)
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
        col.add(root, (), "not a directory", "pass the desired-state directory (desired-state/)")
        return LoadResult(None, col.diags)
    files: dict[Path, bytes] = {}
    problems: list[Diagnostic] = []
    tenant = root / TENANT_FILE
    for path in [tenant, *_yaml_files(root)] if tenant.is_file() else _yaml_files(root):
        try:
            files[path] = path.read_bytes()
        except OSError as exc:
            problems.append(
                Diagnostic(
                    display_path(path), 0, 0, f"cannot read: {exc.strerror}", "check permissions"
                )
            )
    result = load_files(root, files)
    result.diagnostics[:0] = problems
    return result


def load_files(
    root: Path, contents: Mapping[Path, bytes], cache: DocumentCache | None = None
) -> LoadResult:
    """Load and check a desired state given as file contents (``root / relative`` → bytes),
    e.g. read from git blobs. ``cache`` reuses validated documents by content."""
    col = Collector(root)
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
    unreadable: list[str] = []  # files that could not be read at all
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
                unreadable.append(display_path(path))
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
        if unreadable and checks.cascading(finding.message):
            continue  # the declaration may be in the file that could not be read
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
    if unreadable:
        col.diags.append(
            Diagnostic(
                unreadable[0],
                0,
                0,
                "references to groups, users and attributes were not checked",
                "fix the errors above first; the declarations may be in a file that failed",
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
        if p.suffix in (".yaml", ".yml") and p.is_file() and rel != Path(TENANT_FILE):
            out.append(p)
    return out
