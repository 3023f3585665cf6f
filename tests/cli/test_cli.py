"""The xenha command: one-line errors, never a traceback; render and simulate."""

import shutil
import subprocess

from click.testing import CliRunner

from conftest import REPO, installed, need_tool
from xenha.cli.main import cli, main

HOWTO = REPO / "cluster-config" / "examples" / "howto.toml"


def test_validate_ok():
    result = CliRunner().invoke(cli, ["validate", str(HOWTO)])
    assert result.exit_code == 0 and "2 nodes, 1 VMs: valid" in result.output


def test_validate_lists_every_problem_and_exits_2(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('[cluster]\nname = "x y"\n[[nodes]]\nname = "a"\nreplication_address = "nope"\n')
    code = main(["validate", str(bad)])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) >= 3 and all(line.startswith(f"{bad}: ") for line in lines)
    assert "Traceback" not in err


def test_missing_file_is_one_line(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "none.toml")]) == 2
    assert capsys.readouterr().err.strip() == f"{tmp_path / 'none.toml'}: no such file"


def test_render_writes_then_reports_unchanged(tmp_path):
    description = tmp_path / "howto.toml"
    shutil.copy(HOWTO, description)
    out = tmp_path / "out"
    first = CliRunner().invoke(cli, ["render", str(description), "-o", str(out)])
    assert first.exit_code == 0, first.output
    assert (out / "drbd.d/vm_shaolin.res").exists() and (out / "xen/shaolin.cfg").exists()
    assert (out / "pacemaker/cib.xml").exists() and (out / "pacemaker/pcs-commands.sh").exists()
    assert (tmp_path / "howto.alloc.toml").exists()
    second = CliRunner().invoke(cli, ["render", str(description), "-o", str(out)])
    assert second.exit_code == 0 and "written" not in second.output and "unchanged" in second.output


def test_simulate_shows_the_migration():
    need_tool("crm_simulate")
    result = CliRunner().invoke(cli, ["simulate", str(HOWTO), "up mk1 mk2", "settle", "standby mk1"])
    assert result.exit_code == 0, result.output
    assert "Migrate    shaolin          (   mk1 -> mk2 )" in result.output


def test_simulate_unknown_step_is_one_line(capsys):
    need_tool("crm_simulate")
    assert main(["simulate", str(HOWTO), "explode mk1"]) == 2
    assert capsys.readouterr().err.strip() == "Error: unknown scenario step 'explode mk1'"


def test_installed_command_runs_with_debians_click():
    import os
    sbindir = os.environ.get("XENHA_SBINDIR", "/usr/local/sbin")
    xenha = installed(f"{sbindir}/xenha")
    result = subprocess.run([xenha, "validate", str(HOWTO)], capture_output=True, text=True)
    assert result.returncode == 0 and "valid" in result.stdout
    version = subprocess.run([xenha, "--version"], capture_output=True, text=True)
    assert version.stdout.startswith("xenha, version ")
