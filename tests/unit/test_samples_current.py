"""The verbatim copies of shared/ files (tests/samples, the OCF 1.1 schema) are what
tests/samples/MANIFEST.toml records: on every run, checked against their recorded
checksums; where shared/ is present (it is not in a clean clone), the originals too."""

import hashlib
import tomllib

import pytest

from conftest import REPO, SAMPLES, SHARED

MANIFEST = SAMPLES / "MANIFEST.toml"
ENTRIES = tomllib.loads(MANIFEST.read_text(encoding="utf-8"))["copy"]
NOT_COPIES = {"README.md", "MANIFEST.toml"}


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_manifest_lists_every_vendored_copy_once():
    listed = [entry["path"] for entry in ENTRIES]
    assert len(listed) == len(set(listed)), "a copy listed twice"
    vendored = {f"tests/samples/{p.name}" for p in SAMPLES.iterdir() if p.name not in NOT_COPIES}
    vendored.add("ocf/ocf-1.1-ra-api.rng")
    assert set(listed) == vendored, f"unlisted: {sorted(vendored - set(listed))}, " \
                                    f"listed but absent: {sorted(set(listed) - vendored)}"
    for entry in ENTRIES:
        assert set(entry) == {"path", "origin", "provenance", "sha256"}, entry
        assert entry["origin"].startswith("shared/") and entry["provenance"], entry


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["path"].rsplit("/", 1)[-1] for e in ENTRIES])
def test_the_copy_is_unchanged(entry):
    assert sha256(REPO / entry["path"]) == entry["sha256"], \
        f"{entry['path']} was changed: copies stay verbatim (copy it again from {entry['origin']})"


def test_the_originals_in_shared_are_still_what_was_copied():
    if not SHARED.is_dir():
        pytest.skip(f"no shared/ here ({SHARED}); the copies were checked against the manifest")
    stale = []
    for entry in ENTRIES:
        original = SHARED / entry["origin"].removeprefix("shared/")
        if not original.exists():
            stale.append(f"{entry['origin']} is gone")
        elif sha256(original) != entry["sha256"]:
            stale.append(f"{entry['origin']} changed: copy it again to {entry['path']} and update the manifest")
    assert stale == []
