"""xl domain config reading, checked against libxlutil's answers in the samples
(shared/samples/xen_03_libxlutil_parser.txt)."""

import pytest

from conftest import SHAOLIN_LEGACY, SHAOLIN_XL, sample
from xenha.tools import xl_config
from xenha.tools.xl_config import XlConfigError, parse, parse_disk_spec


def test_seed_config_as_is():
    config = parse(SHAOLIN_LEGACY)
    assert config.name == "shaolin"
    assert config.get("memory") == 512
    assert config.get("root") == "/dev/hda1 ro"
    assert config.get("vif") == ["bridge=xenbr0"]
    (disk,) = config.disks()
    assert (disk.target, disk.vdev, disk.writable, disk.script) == ("vm_shaolin", "hda1", True, "block-drbd")
    assert disk.drbd_resource == "vm_shaolin"
    assert not config.is_hvm


def test_modern_config():
    config = parse(SHAOLIN_XL)
    (disk,) = config.disks()
    assert (disk.target, disk.vdev, disk.writable, disk.format, disk.script) == (
        "/dev/drbd1", "xvda", True, "raw", None)
    assert disk.drbd_resource is None
    assert config.get("on_crash") == "preserve"


def sample_blocks():
    """(config text, parser output) pairs from the libxlutil sample."""
    blocks, current = [], None
    for line in sample("xen_03_libxlutil_parser.txt").splitlines():
        if line.startswith("$ cat "):
            current = {"cmd": line, "lines": []}
            blocks.append(current)
        elif current is not None and not line.startswith("[rc="):
            current["lines"].append(line)
    return blocks


@pytest.mark.parametrize("index", [0, 1])
def test_disk_specs_match_libxlutil(index):
    block = sample_blocks()[index]
    lines = block["lines"]
    spec_lines = [l for l in lines if l.startswith("disk[0] spec=")]
    (answer,) = spec_lines
    # The file's lines come first (`key = value`, comments); the parser's view follows.
    file_lines = []
    for line in lines:
        if not (line.startswith("#") or " = " in line):
            break
        file_lines.append(line)
    config_text = "\n".join(file_lines)
    config = parse(config_text)
    expected = dict(kv.split("=", 1) for kv in answer.split("-> ", 1)[1].split())
    (disk,) = config.disks()
    assert disk.target == expected["pdev_path"]
    assert disk.vdev == expected["vdev"]
    assert disk.format == expected["format"]
    assert disk.script == expected["script"]
    assert int(disk.writable) == int(expected["readwrite"])


def test_lexical_error_text_matches_libxlutil():
    expected = "/srv/lab/xen/broken.cfg:1: config parsing error near `\"broken': lexical error"
    assert expected in sample("xen_03_libxlutil_parser.txt")
    with pytest.raises(XlConfigError) as failure:
        parse('name = "broken\nmemory = 512\n', "/srv/lab/xen/broken.cfg")
    assert str(failure.value) == expected


def test_disk_error_text_matches_libxlutil():
    expected = ("/srv/lab/xen/baddisk.cfg: config parsing error in disk specification: unknown value "
                "for access: near `sideways' in `vdev=xvda,access=sideways,target=/dev/x'")
    assert expected in sample("xen_03_libxlutil_parser.txt")
    with pytest.raises(XlConfigError) as failure:
        parse_disk_spec("vdev=xvda,access=sideways,target=/dev/x", "/srv/lab/xen/baddisk.cfg")
    assert str(failure.value) == expected


@pytest.mark.parametrize("text,key,value", [
    ("memory=0x200", "memory", 512),
    ("a = 'x'; b = \"y\"", "b", "y"),
    ("disk = [\n  'phy:/dev/a,xvda,w',\n  'phy:/dev/b,xvdb,r',\n]\n", "disk", ["phy:/dev/a,xvda,w", "phy:/dev/b,xvdb,r"]),
    ("extra = 'a'\nextra += ' b'", "extra", "a b"),
    ("name = 'x' # comment", "name", "x"),
    ('cmd = "a\\"b"', "cmd", 'a"b'),
])
def test_value_forms(text, key, value):
    assert parse(text).get(key) == value


@pytest.mark.parametrize("text", ["name = ", "= 'x'", "name 'x'", "disk = ['a' 'b']", "n = 'x' 'y'",
                                  "v = [1, 2", "x = $"])
def test_syntax_errors(text):
    with pytest.raises(XlConfigError, match="config parsing error near"):
        parse(text)


@pytest.mark.parametrize("spec,target,vdev,writable,script", [
    ("phy:/dev/vg0/vm,xvda,w", "/dev/vg0/vm", "xvda", True, None),
    ("file:/srv/disk.img,xvdb,r", "/srv/disk.img", "xvdb", False, None),
    ("drbd:r0,xvda,w", "r0", "xvda", True, "block-drbd"),
    ("/dev/drbd1,xvda,rw", "/dev/drbd1", "xvda", True, None),
    ("vdev=xvda, access=ro, target=/dev/x,y", "/dev/x,y", "xvda", False, None),
    ("format=raw,vdev=hdc,access=ro,devtype=cdrom,target=/iso/a.iso", "/iso/a.iso", "hdc", False, None),
])
def test_disk_spec_forms(spec, target, vdev, writable, script):
    disk = parse_disk_spec(spec)
    assert (disk.target, disk.vdev, disk.writable, disk.script) == (target, vdev, writable, script)


def test_disk_without_vdev_is_an_error():
    with pytest.raises(XlConfigError, match="no vdev"):
        parse_disk_spec("target=/dev/x")


def test_load_reports_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        xl_config.load(str(tmp_path / "nope.cfg"))
