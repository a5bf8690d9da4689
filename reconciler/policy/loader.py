"""Load ``policies/*.yaml`` and compile every expression once.

A broken expression is a validation error with the file, the line of the expression and CEL's
own message; so is a variable the policy's subject does not provide.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import cel
from pydantic import TypeAdapter, ValidationError

from reconciler.desired.loader import (
    Collector,
    SourceFile,
    read_error,
    read_yaml,
    report_validation_error,
)
from reconciler.diagnostics import Diagnostic, Severity
from reconciler.policy.models import VARIABLES, PoliciesFile, Policy

_FILE = TypeAdapter(PoliciesFile)
_POLICY = TypeAdapter(Policy)
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
# Names CEL binds inside macros (all, exists, map, filter) are reported as variables too;
# only a name outside every macro must be one the subject provides.
_MACRO_VAR = re.compile(r"\.\s*(?:all|exists|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")


@dataclass(frozen=True)
class CompiledPolicy:
    policy: Policy
    program: cel.Program
    # The message split into literal text and compiled placeholders, alternating.
    message_parts: tuple[str | cel.Program, ...]
    file: str
    line: int


@dataclass
class PolicySet:
    policies: list[CompiledPolicy] = field(default_factory=list)
    diagnostics: list[Diagnostic] = field(default_factory=list)

    def for_subject(self, subject: str) -> list[CompiledPolicy]:
        return [p for p in self.policies if p.policy.subject == subject]


def _cel_error(exc: Exception) -> str:
    text = str(exc)
    # CEL's parser message repeats the expression; keep the first, informative line.
    text = text.split("\n", 1)[0]
    return text.replace("Failed to parse expression", "CEL syntax error in").strip()


def _compile(expr: str) -> tuple[cel.Program | None, str]:
    try:
        return cel.compile(expr), ""
    except (ValueError, RuntimeError) as exc:
        return None, _cel_error(exc)


def _unknown_variables(program: cel.Program, expr: str, subject: str) -> list[str]:
    bound = set(_MACRO_VAR.findall(expr))
    allowed = set(VARIABLES[subject])
    return [v for v in program.variables() if v not in allowed and v not in bound]


def load_policies(directory: Path) -> PolicySet:
    """Every policy in ``directory`` (``*.yaml``, recursively); a missing directory is empty."""
    out = PolicySet()
    if not directory.is_dir():
        return out
    col = Collector(directory)
    names: dict[str, str] = {}
    for path in sorted(directory.rglob("*.y*ml")):
        try:
            data = path.read_bytes()
        except OSError as exc:
            col.add(path, (), *read_error(exc))
            continue
        f, raw = read_yaml(col, path, data)
        if f is None or raw is None:
            continue
        try:
            items = list(enumerate(_FILE.validate_python(raw).policies))
        except ValidationError as exc:
            report_validation_error(col, f, exc, PoliciesFile, ())
            # The other policies of the file are still checked: every error at once.
            items = _valid_items(raw, exc)
        for i, policy in items:
            compiled = _compile_policy(col, f, i, policy)
            if policy.name in names:
                col.add(
                    f,
                    ("policies", i, "name"),
                    f"duplicate policy name {policy.name!r} (also in {names[policy.name]})",
                    "give every policy its own name",
                )
            names[policy.name] = str(path.name)
            if compiled is not None:
                out.policies.append(compiled)
    out.diagnostics = col.diags
    return out


def _valid_items(raw: object, exc: ValidationError) -> list[tuple[int, Policy]]:
    """The policies of a file that failed validation that are themselves valid."""
    bad = {
        e["loc"][1]
        for e in exc.errors(include_input=False, include_url=False)
        if len(e["loc"]) > 1 and e["loc"][0] == "policies"
    }
    items = raw.get("policies") if isinstance(raw, dict) else None
    if not isinstance(items, list):
        return []
    out = []
    for i, item in enumerate(items):
        if i in bad:
            continue
        try:
            out.append((i, _POLICY.validate_python(item)))
        except ValidationError:
            continue  # reported above
    return out


def _compile_policy(col: Collector, f: SourceFile, i: int, policy: Policy) -> CompiledPolicy | None:
    at = ("policies", i, "expression")
    program, error = _compile(policy.expression)
    if program is None:
        col.add(
            f,
            at,
            f"policy {policy.name!r}: {error}",
            "fix the expression; CEL reference: https://github.com/google/cel-spec",
        )
        return None
    unknown = _unknown_variables(program, policy.expression, policy.subject)
    if unknown:
        col.add(
            f,
            at,
            f"policy {policy.name!r} uses unknown variable {unknown[0]!r}",
            f"a {policy.subject} policy can use: {', '.join(VARIABLES[policy.subject])}",
        )
        return None
    parts: list[str | cel.Program] = []
    last = 0
    ok = True
    for m in _PLACEHOLDER.finditer(policy.message):
        parts.append(policy.message[last : m.start()])
        sub, err = _compile(m.group(1).strip())
        if sub is None:
            col.add(
                f,
                ("policies", i, "message"),
                f"policy {policy.name!r}: message placeholder: {err}",
                "placeholders hold CEL, e.g. {{ user.userName }}",
            )
            ok = False
            break
        parts.append(sub)
        last = m.end()
    parts.append(policy.message[last:])
    if not ok:
        return None
    line, _ = f.position(at)
    return CompiledPolicy(
        policy,
        program,
        tuple(parts),
        str(f.path),
        line,
    )


def severity_of(p: CompiledPolicy) -> Severity:
    return Severity(p.policy.severity)
