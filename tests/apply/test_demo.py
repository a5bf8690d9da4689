"""`make demo` runs `reconciler demo`: the whole main job from a fresh clone, twice."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_demo_converges_from_a_fresh_clone_and_runs_again(tmp_path: Path) -> None:
    if not (REPO / ".git").exists():
        pytest.skip("needs the repository's git history (the removal of a former employee)")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    env = {**os.environ, "NO_COLOR": "1"}
    for attempt in (1, 2):
        r = subprocess.run(
            [sys.executable, "-m", "reconciler", "demo"],
            cwd=clone,
            env=env,
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0, f"attempt {attempt}: {r.stdout}{r.stderr}"
        out = r.stdout
        drift = out[out.index("== 3. reconciler plan") : out.index("== 4. reconciler apply")]
        assert "~ update User olivia.bennett@acme.example" in drift
        assert '~ title: "Chief Revenue Officer" → "VP Sales"' in drift
        assert "± suspend User pat.doe@acme.example" in drift
        assert "removed from desired-state in" in drift
        assert "drift: user 'temp.helper@acme.example' is in the tenant but not in" in drift
        applied = out[out.index("== 4. reconciler apply") : out.index("== 5.")]
        assert "2 ok" in applied and "Apply complete: every change succeeded." in applied
        final = out[out.index("== 5. reconciler plan (again)") :]
        # The user added in the console is still there: ownership: report leaves it alone.
        assert (
            "No changes. The tenant matches desired-state except for 1 unmanaged object, "
            "reported above as drift (ownership: report leaves it alone)."
        ) in final
        assert "Traceback" not in r.stderr
    # The demo leaves the clone as it found it: no tracked file changed, no receipt notes.
    status = subprocess.run(
        ["git", "status", "--porcelain"], cwd=clone, capture_output=True, text=True, check=True
    )
    assert status.stdout == ""
    notes = subprocess.run(
        ["git", "notes", "--ref", "reconciler", "list"], cwd=clone, capture_output=True, text=True
    )
    assert notes.stdout == ""
