"""xl output parsing against the verbatim samples (shared/samples/xl_list.txt)."""

import pytest

from conftest import sample
from xenha.hypervisor import domain as dom
from xenha.tools.runner import CommandResult
from xenha.tools.xl import XlError, classify_migration, parse_info, parse_list


def tables():
    """The three `xl list` tables of the sample, keyed (A) (B) (C)."""
    found, key, lines = {}, None, []
    for line in sample("xl_list.txt").splitlines():
        if line.startswith("## ("):
            if key:
                found[key] = "\n".join(lines)
            key, lines = line[3:6], []
        elif key and line.strip():
            lines.append(line)
    found[key] = "\n".join(lines)
    return found


def test_four_instances_table():
    domains = parse_list(tables()["(A)"])
    assert [d.name for d in domains] == ["Domain-0", "server01.example.com",
                                         "web3106215069.example.com", "testinstance.example.com"]
    server = domains[1]
    assert (server.domid, server.memory_mib, server.vcpus, server.letters) == (1, 1024, 1, "-b----")
    assert server.state == dom.BLOCKED and server.active
    assert domains[3].state == dom.RUNNING and domains[3].cpu_seconds == 244443.0


def test_crashed_and_dying_null_domains():
    domains = parse_list(tables()["(B)"])
    null, also = domains[2], domains[3]
    assert null.name == "(null)" and null.domid == 28441
    assert null.state == dom.CRASHED and not null.active
    assert also.letters == "--psc-" and also.shutdown_reason == "crash"


def test_man_page_example_with_tabs_in_header():
    text = tables()["(C)"].replace("VCPUs      State   Time(s)", "VCPUs\tState\tTime(s)")
    assert [d.name for d in parse_list(text)] == ["Domain-0", "win", "linux"]


@pytest.mark.parametrize("letters,state", [
    ("r-----", dom.RUNNING), ("-b----", dom.BLOCKED), ("------", dom.RUNNABLE),
    ("--p---", dom.PAUSED), ("---s--", dom.SHUTDOWN), ("---sr-", dom.SHUTDOWN),
    ("---ss-", dom.SHUTDOWN), ("--psc-", dom.CRASHED), ("---sc-", dom.CRASHED),
    ("-----d", dom.DYING), ("--ps-d", dom.DYING), ("rb----", dom.RUNNING),
])
def test_state_letters(letters, state):
    assert dom.state_from_letters(letters) == state


@pytest.mark.parametrize("letters", ["r----", "x-----", "r------", "---sq-"])
def test_unknown_state_letters_are_rejected(letters):
    with pytest.raises(ValueError):
        dom.state_from_letters(letters)


@pytest.mark.parametrize("text", [
    "",
    "xencall: error: Could not obtain handle on privileged command interface",
    "Name ID Mem VCPUs State\nDomain-0 0 1 1 r----- 1.0",
    "Name                                        ID   Mem VCPUs\tState\tTime(s)\nvm 1 x 1 r----- 1.0",
    "Name                                        ID   Mem VCPUs\tState\tTime(s)\nvm 1 512 1 r?---- 1.0",
    "Name                                        ID   Mem VCPUs\tState\tTime(s)\nshort row",
])
def test_unreadable_listings_are_errors_not_empty_lists(text):
    with pytest.raises(XlError):
        parse_list(text)


def test_presence_finds_migration_copies():
    domains = parse_list(
        "Name                                        ID   Mem VCPUs\tState\tTime(s)\n"
        "Domain-0                                     0  1024     2     r-----      10.0\n"
        "shaolin--migratedaway                        3   512     1     ---ss-       1.0\n"
        "shaolin--incoming                            4   512     1     --p---       0.0\n"
        "shaolinx                                     5   512     1     -b----       0.0\n")
    presence = dom.DomainPresence("shaolin", domains)
    assert presence.main is None and not presence.absent and not presence.running
    assert [d.domid for d in presence.copies()] == [4, 3]
    assert dom.DomainPresence("other", domains).absent


def result(rc, stderr="", timed_out=False):
    return CommandResult(["xl", "migrate"], rc, "", stderr, timed_out, 1.0)


@pytest.mark.parametrize("rc,stderr,timed_out,outcome", [
    (0, "migration sender: Target reports successful startup.\nMigration successful.\n", False, dom.MIGRATED),
    (1, "migration sender: libxl_domain_suspend failed (rc=-3)\nMigration failed, resuming at sender.\n",
     False, dom.FAILED_SOURCE_RESUMED),
    (1, "Migration failed, failed to suspend at sender.\n", False, dom.FAILED_SOURCE_RESUMED),
    (1, "migration sender: Target reports startup failure (status code 3).\n"
        "migration sender: Trying to resume at our end.\nmigration sender: Resumed OK.\n"
        "Migration failed due to problems at target.\n", False, dom.FAILED_SOURCE_RESUMED),
    (1, "** Migration failed during final handshake **\nDomain state is now undefined !\n", False,
     dom.FAILED_UNDEFINED),
    (-15, "", True, dom.FAILED_UNDEFINED),
    (1, "libxl: error: libxl_utils.c:183:libxl_read_exactly: file/stream truncated reading banner "
        "from migration receiver stream\n", False, dom.FAILED_OTHER),
    (1, "shaolin is an invalid domain identifier (rc=-6)\n", False, dom.FAILED_OTHER),
])
def test_migration_outcomes(rc, stderr, timed_out, outcome):
    assert classify_migration(result(rc, stderr, timed_out)) == outcome


def test_info_lines():
    info = parse_info("host                   : mk1\ntotal_memory           : 16384\nxen_version            : 4.17.0\n")
    assert info == {"host": "mk1", "total_memory": "16384", "xen_version": "4.17.0"}
