"""Our verbatim copies of shared/ files must still match shared/ (when it is there)."""

import pytest

from conftest import REPO, SAMPLES, SHARED

COPIES = [(SAMPLES / p.name, SHARED / "samples" / p.name) for p in sorted(SAMPLES.glob("*.txt"))]
COPIES.append((REPO / "ocf" / "ocf-1.1-ra-api.rng", SHARED / "schemas" / "ocf-1.1-ra-api.rng"))


@pytest.mark.parametrize("copy,original", COPIES, ids=[c[0].name for c in COPIES])
def test_copy_matches_shared(copy, original):
    if not original.exists():
        pytest.skip(f"{original} not available on this machine")
    assert copy.read_bytes() == original.read_bytes(), f"{copy} differs from {original}: copy it again"
