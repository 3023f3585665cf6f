"""Issue 9, the command side: `validate` refuses whatever `render` refuses (both start
from the same in-memory rendering), `render` writes all or nothing (the allocation file
last), `simulate` refuses nodes and VMs the description does not have, and bad files
give one located line, never a traceback."""

import contextlib
import io
import json
import os
import shutil
import signal
import stat

import pytest
from hypothesis import HealthCheck, given, settings

from conftest import REPO
from description_strategies import clusters
from xenha.cli.main import main
from xenha.render import files

HOWTO = REPO / "cluster-config" / "examples" / "howto.toml"
LV_COLLISION = '\n[[vms]]\nname = "lv_shaolin"\nmemory = 256\nkernel = "/k"\ndisk_size = "1G"\n'


def run(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def snapshot(*roots) -> dict:
    """Every file under the roots (and the roots themselves when files): path -> bytes."""
    found = {}
    for root in roots:
        if os.path.isfile(root):
            found[str(root)] = open(root, "rb").read()
            continue
        for directory, _dirs, names in os.walk(root):
            for name in names:
                path = os.path.join(directory, name)
                regular = stat.S_ISREG(os.lstat(path).st_mode)
                found[path] = open(path, "rb").read() if regular else "not a regular file"
    return found


@pytest.fixture
def rendered_once(tmp_path):
    """The howto rendered into tmp_path/out, its allocation next to it."""
    description = tmp_path / "howto.toml"
    shutil.copy(HOWTO, description)
    out = tmp_path / "out"
    code, _out, err = run("render", str(description), "-o", str(out))
    assert code == 0, err
    return description, out, tmp_path / "howto.alloc.toml"


# --- validate = render -------------------------------------------------------------------
def test_validate_refuses_colliding_pacemaker_ids_like_render(rendered_once):
    description, out, allocation = rendered_once
    with open(description, "a") as handle:
        handle.write(LV_COLLISION)
    before = snapshot(out, allocation)
    for argv in (["validate", str(description)], ["render", str(description), "-o", str(out)]):
        code, _out, err = run(*argv)
        assert code == 2, argv
        assert f"{description}: vms[1].name: Pacemaker id 'lv_shaolin' would be made twice" in err, err
    assert snapshot(out, allocation) == before


def test_validate_refuses_a_corrupt_allocation_file_like_render(tmp_path):
    description = tmp_path / "howto.toml"
    shutil.copy(HOWTO, description)
    (tmp_path / "howto.alloc.toml").write_bytes(b'[vms.shaolin]\ndrbd_resource = "vm_shaolin"\n'
                                                b'drbd_minor = -5\ndrbd_port = 7789\n')
    for argv in (["validate", str(description)], ["render", str(description), "-o", str(tmp_path / "out")]):
        code, _out, err = run(*argv)
        assert code == 2 and err.strip() == (f"{tmp_path / 'howto.alloc.toml'}: vms.shaolin: drbd_minor -5 is not "
                                             "a DRBD minor (0-1048575)"), err
    assert not (tmp_path / "out").exists()


def test_validate_says_which_vms_render_will_number(tmp_path):
    description = tmp_path / "trio.toml"
    shutil.copy(REPO / "cluster-config/examples/three-nodes.toml", description)
    code, out, _err = run("validate", str(description))
    assert code == 0 and "VMs without DRBD numbers yet: web1, web2, db1, mail, ns1" in out
    assert not (tmp_path / "trio.alloc.toml").exists()


def _toml(data: dict) -> str:
    """A small TOML writer for generated descriptions (tables, arrays of tables, scalars)."""
    def value(v):
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            return repr(v)
        if isinstance(v, list):
            return "[" + ", ".join(value(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items()) + "}"
        return json.dumps(v, ensure_ascii=False)
    lines = []
    for section, content in data.items():
        if isinstance(content, list):
            for entry in content:
                lines.append(f"[[{section}]]")
                lines += [f"{json.dumps(k)} = {value(v)}" for k, v in entry.items()]
        else:
            lines.append(f"[{section}]")
            lines += [f"{json.dumps(k)} = {value(v)}" for k, v in content.items()]
    return "\n".join(lines) + "\n"


@settings(max_examples=60, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=clusters(faults=(0, 1, 1, 2)))
def test_validate_and_render_agree_and_a_refused_render_writes_nothing(tmp_path_factory, data):
    directory = tmp_path_factory.mktemp("agree")
    description = directory / "d.toml"
    description.write_text(_toml(data), encoding="utf-8")
    validated, _out, validate_err = run("validate", str(description))
    rendered, _out, render_err = run("render", str(description), "-o", str(directory / "out"))
    assert validated == rendered, (validate_err, render_err)
    assert validated in (0, 2) and "Traceback" not in validate_err + render_err
    if rendered != 0:
        assert validate_err == render_err
        assert not (directory / "out").exists() and not (directory / "d.alloc.toml").exists()


# --- all or nothing --------------------------------------------------------------------------
def test_a_failed_render_leaves_output_and_allocation_as_they_were(rendered_once):
    """A late step fails (the Pacemaker ids, after the DRBD and xl files were rendered
    in memory): nothing on disk changes, though the new VM would change every file."""
    description, out, allocation = rendered_once
    before = snapshot(out, allocation)
    with open(description, "a") as handle:
        handle.write('\n[[vms]]\nname = "extra"\nmemory = 256\nkernel = "/k"\ndisk_size = "1G"\n' + LV_COLLISION)
    code, _out, err = run("render", str(description), "-o", str(out))
    assert code == 2 and "would be made twice" in err
    assert snapshot(out, allocation) == before


def test_a_failure_while_replacing_files_puts_the_old_ones_back(rendered_once, monkeypatch):
    description, out, allocation = rendered_once
    before = snapshot(out, allocation)
    with open(description, "a") as handle:
        handle.write('\n[[vms]]\nname = "extra"\nmemory = 256\nkernel = "/k"\ndisk_size = "1G"\n')
    real_replace = os.replace

    def replace(source, target, *args, **kwargs):
        if os.fspath(target) == str(allocation):          # the last step: the allocation file
            raise OSError(28, "No space left on device")
        return real_replace(source, target, *args, **kwargs)
    monkeypatch.setattr(files.os, "replace", replace)
    code, _out, err = run("render", str(description), "-o", str(out))
    assert code == 1
    assert err.strip() == (f"Error: {allocation}: cannot write: No space left on device; "
                           "the files already replaced were put back")
    assert snapshot(out, allocation) == before              # also: no temporary file left


def test_a_failure_while_staging_changes_nothing(rendered_once, monkeypatch):
    description, out, allocation = rendered_once
    before = snapshot(out, allocation)
    with open(description, "a") as handle:
        handle.write('\n[[vms]]\nname = "extra"\nmemory = 256\nkernel = "/k"\ndisk_size = "1G"\n')
    real_mkstemp, calls = files.tempfile.mkstemp, []

    def mkstemp(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(13, "Permission denied")
        return real_mkstemp(*args, **kwargs)
    monkeypatch.setattr(files.tempfile, "mkstemp", mkstemp)
    code, _out, err = run("render", str(description), "-o", str(out))
    assert code == 1 and "cannot write: Permission denied; nothing was changed" in err
    assert snapshot(out, allocation) == before


def test_render_does_not_replace_what_is_not_a_regular_file(rendered_once):
    description, out, allocation = rendered_once
    (out / "xen" / "shaolin.cfg").unlink()
    os.mkfifo(out / "xen" / "shaolin.cfg")
    before = snapshot(out, allocation)
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("render blocked on a FIFO"))
    signal.alarm(10)
    try:
        with open(description, "a") as handle:
            handle.write('\n[[vms]]\nname = "extra"\nmemory = 256\nkernel = "/k"\ndisk_size = "1G"\n')
        code, _out, err = run("render", str(description), "-o", str(out))
    finally:
        signal.alarm(0)
    assert code == 1 and "shaolin.cfg: exists and is not a regular file; not replacing it" in err
    assert snapshot(out, allocation) == before


def test_rendered_files_keep_their_mode_and_the_script_is_executable(rendered_once):
    description, out, _allocation = rendered_once
    cfg = out / "xen" / "shaolin.cfg"
    os.chmod(cfg, 0o640)
    with open(description, "a") as handle:
        handle.write('\n[[vms]]\nname = "extra"\nmemory = 256\nkernel = "/k"\ndisk_size = "1G"\n')
    assert run("render", str(description), "-o", str(out))[0] == 0
    assert os.stat(cfg).st_mode & 0o777 == 0o640
    assert os.stat(out / "pacemaker" / "pcs-commands.sh").st_mode & 0o111


# --- simulate ----------------------------------------------------------------------------------
@pytest.mark.parametrize("step,message", [
    ("up mk1 mk9", "Error: step 'up mk1 mk9': unknown node 'mk9' (nodes: mk1, mk2)"),
    ("standby mk3", "Error: step 'standby mk3': unknown node 'mk3' (nodes: mk1, mk2)"),
    ("fail", "Error: step 'fail': usage: fail NODE"),
    ("move shaolin", "Error: step 'move shaolin': usage: move VM NODE"),
    ("move nginx mk2", "Error: step 'move nginx mk2': unknown VM 'nginx' (VMs: shaolin)"),
    ("outdated shaolin mk1 mk2", "Error: step 'outdated shaolin mk1 mk2': usage: outdated VM NODE"),
    ("up", "Error: step 'up': usage: up NODE..."),
])
def test_simulate_refuses_nodes_and_vms_the_description_does_not_have(step, message):
    code, _out, err = run("simulate", str(HOWTO), step)
    assert code == 1 and err.strip() == message


def test_simulate_refuses_what_validate_refuses(tmp_path):
    description = tmp_path / "howto.toml"
    description.write_text(HOWTO.read_text() + LV_COLLISION)
    code, _out, err = run("simulate", str(description), "up mk1 mk2")
    assert code == 2 and "would be made twice" in err


# --- located one-line errors -------------------------------------------------------------------
@pytest.mark.parametrize("content,message", [
    (b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + b"\x03\x00>\x00\x01\x00\x00\x00\xe0\x4f",
     "{path}: line 1: not UTF-8 text (byte 0xe0); the description must be a TOML file"),
    (b"\xff\xfe[\x00c\x00", "{path}: line 1: not UTF-8 text (byte 0xff); the description must be a TOML file"),
])
def test_a_binary_description_is_one_line(tmp_path, content, message):
    path = tmp_path / "d.toml"
    path.write_bytes(content)
    code, _out, err = run("validate", str(path))
    assert code == 2 and err.strip() == message.format(path=path)


def test_a_fifo_description_is_refused_at_once(tmp_path):
    path = tmp_path / "d.toml"
    os.mkfifo(path)
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("validate blocked on a FIFO"))
    signal.alarm(10)
    try:
        code, _out, err = run("validate", str(path))
    finally:
        signal.alarm(0)
    assert code == 2 and err.strip() == f"{path}: the description is not a regular file"
