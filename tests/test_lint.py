"""Static checks: pyflakes rules (undefined names, unused imports) over the whole tree."""

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO, missing_prerequisite


def test_ruff_finds_nothing():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        missing_prerequisite("ruff is not installed (in .venv)")
    result = subprocess.run([ruff, "check", "lib", "tests", "scripts"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
