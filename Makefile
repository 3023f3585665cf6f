# xenha — highly available Xen domains on DRBD-replicated LVM, run by Pacemaker.
# The two commands a newcomer needs (README.md): `make demo` and `make test`.

PYTHON    ?= /usr/bin/python3
PREFIX    ?= /usr/local
DESTDIR   ?=
OCF_ROOT  ?= /usr/lib/ocf
PYLIBDIR  ?= $(PREFIX)/lib/xenha
SBINDIR   ?= $(PREFIX)/sbin
PROVIDER_DIR = $(OCF_ROOT)/resource.d/xenha
# development tooling (simulators, lab, demo, bench): `make install-lab`, never on an agent's path
LABLIBDIR ?= $(PREFIX)/lib/xenha-lab
SIMBINDIR = $(LABLIBDIR)/sim-bin
# the lab's fence agent; the lab shows it in its nodes' /usr/sbin (where pacemaker-fenced
# looks for fence_* agents), never in the host's
LABSBINDIR = $(LABLIBDIR)/sbin

# type:module pairs from the package's registries (xenha.agents.AGENTS, xenha.handlers.HANDLERS),
# the one place that lists them; read only when a recipe uses them.
AGENTS    = $(shell $(PYTHON) -IB -c 'import sys; sys.path.insert(0, "lib"); from xenha.agents import AGENTS; \
	print(*(f"{name}:{module}" for name, (module, _class) in AGENTS.items()))')
HANDLERS  = $(shell $(PYTHON) -IB -c 'import sys; sys.path.insert(0, "lib"); from xenha.handlers import HANDLERS; \
	print(*(f"{name}:{module}" for name, module in HANDLERS.items()))')
# simulated tool name : module providing main()
# lvm2 commands (real lvm2 underneath, activation simulated) and dmsetup
LVM_SIM_TOOLS = lvm:xenha_lab.sim.lvm.lvm lvs:xenha_lab.sim.lvm.lvm vgs:xenha_lab.sim.lvm.lvm pvs:xenha_lab.sim.lvm.lvm lvchange:xenha_lab.sim.lvm.lvm vgchange:xenha_lab.sim.lvm.lvm lvcreate:xenha_lab.sim.lvm.lvm lvremove:xenha_lab.sim.lvm.lvm lvconvert:xenha_lab.sim.lvm.lvm lvextend:xenha_lab.sim.lvm.lvm lvreduce:xenha_lab.sim.lvm.lvm lvresize:xenha_lab.sim.lvm.lvm lvrename:xenha_lab.sim.lvm.lvm vgrename:xenha_lab.sim.lvm.lvm vgremove:xenha_lab.sim.lvm.lvm vgcfgbackup:xenha_lab.sim.lvm.lvm vgcfgrestore:xenha_lab.sim.lvm.lvm lvmconfig:xenha_lab.sim.lvm.lvm lvmdump:xenha_lab.sim.lvm.lvm lvdisplay:xenha_lab.sim.lvm.lvm lvscan:xenha_lab.sim.lvm.lvm vgdisplay:xenha_lab.sim.lvm.lvm pvdisplay:xenha_lab.sim.lvm.lvm pvcreate:xenha_lab.sim.lvm.lvm pvremove:xenha_lab.sim.lvm.lvm pvchange:xenha_lab.sim.lvm.lvm pvscan:xenha_lab.sim.lvm.lvm pvresize:xenha_lab.sim.lvm.lvm vgcreate:xenha_lab.sim.lvm.lvm vgextend:xenha_lab.sim.lvm.lvm vgreduce:xenha_lab.sim.lvm.lvm vgexport:xenha_lab.sim.lvm.lvm vgimport:xenha_lab.sim.lvm.lvm vgscan:xenha_lab.sim.lvm.lvm vgck:xenha_lab.sim.lvm.lvm vgmknodes:xenha_lab.sim.lvm.lvm lvmdiskscan:xenha_lab.sim.lvm.lvm lvmsadc:xenha_lab.sim.lvm.lvm lvmsar:xenha_lab.sim.lvm.lvm pvck:xenha_lab.sim.lvm.lvm pvmove:xenha_lab.sim.lvm.lvm lvmdevices:xenha_lab.sim.lvm.lvm vgimportdevices:xenha_lab.sim.lvm.lvm vgsplit:xenha_lab.sim.lvm.lvm vgmerge:xenha_lab.sim.lvm.lvm vgconvert:xenha_lab.sim.lvm.lvm
SIM_TOOLS = xl:xenha_lab.sim.xen.xl xenha-sim-ssh:xenha_lab.sim.xen.transport drbdsetup:xenha_lab.sim.drbd.drbdsetup xenha-sim-drbd-kernel:xenha_lab.sim.drbd.kernel drbdsetup-84:xenha_lab.sim.drbd.drbdsetup84 $(LVM_SIM_TOOLS) dmsetup:xenha_lab.sim.lvm.dmsetup

BUILD     = build
STAGE     = $(BUILD)/stage
VENV      = .venv
PYTEST_ARGS ?=

.PHONY: all demo test test-real test-real-ci real-images bench install install-lab deps venv stage clean

all: stage

deps:
	scripts/install-debian-packages

venv: $(VENV)/.stamp
$(VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

# The product: what runs on a cluster node (agents, drivers, handlers, renderers, CLI).
install:
	install -d $(DESTDIR)$(PYLIBDIR) $(DESTDIR)$(PROVIDER_DIR) $(DESTDIR)$(SBINDIR)
	rm -rf $(DESTDIR)$(PYLIBDIR)/xenha
	cd lib && find xenha -name '*.py' | while read -r f; do \
		install -D -m 0644 "$$f" "$(abspath $(DESTDIR))$(PYLIBDIR)/$$f"; done
	$(PYTHON) -m compileall -q -d $(PYLIBDIR)/xenha $(DESTDIR)$(PYLIBDIR)/xenha
	install -d $(DESTDIR)$(PYLIBDIR)/examples
	install -m 0644 cluster-config/examples/*.toml $(DESTDIR)$(PYLIBDIR)/examples/
	agents="$(AGENTS)"; test -n "$$agents" || { echo "no agents in xenha.agents.AGENTS" >&2; exit 1; }; \
	for spec in $$agents; do agent=$${spec%%:*}; module=$${spec#*:}; \
		sed -e 's|@PYTHON@|$(PYTHON)|g' -e 's|@PYLIBDIR@|$(PYLIBDIR)|g' \
			-e "s|@AGENT@|$$agent|g" -e "s|@MODULE@|$$module|g" agents/agent.in \
			> $(DESTDIR)$(PROVIDER_DIR)/$$agent; \
		chmod 0755 $(DESTDIR)$(PROVIDER_DIR)/$$agent; done
	sed -e 's|@PYTHON@|$(PYTHON)|g' -e 's|@PYLIBDIR@|$(PYLIBDIR)|g' -e 's|@LABLIBDIR@|$(LABLIBDIR)|g' \
		bin/xenha.in > $(DESTDIR)$(SBINDIR)/xenha
	chmod 0755 $(DESTDIR)$(SBINDIR)/xenha
	handlers="$(HANDLERS)"; test -n "$$handlers" || { echo "no handlers in xenha.handlers.HANDLERS" >&2; exit 1; }; \
	for spec in $$handlers; do tool=$${spec%%:*}; module=$${spec#*:}; \
		sed -e 's|@PYTHON@|$(PYTHON)|g' -e 's|@PYLIBDIR@|$(PYLIBDIR)|g' \
			-e "s|@TOOL@|$$tool|g" -e "s|@MODULE@|$$module|g" bin/handler.in \
			> $(DESTDIR)$(SBINDIR)/$$tool; \
		chmod 0755 $(DESTDIR)$(SBINDIR)/$$tool; done

# Development tooling, apart from the product: the simulators (with their tools in
# sim-bin, never on PATH unless a test or the lab puts them there), the harness, the
# lab (and its fence agent), the demo and the bench. Needs the product
# installed with the same PREFIX.
install-lab:
	install -d $(DESTDIR)$(LABLIBDIR) $(DESTDIR)$(SIMBINDIR)
	rm -rf $(DESTDIR)$(LABLIBDIR)/xenha_lab
	cd lib && find xenha_lab -name '*.py' | while read -r f; do \
		install -D -m 0644 "$$f" "$(abspath $(DESTDIR))$(LABLIBDIR)/$$f"; done
	$(PYTHON) -m compileall -q -d $(LABLIBDIR)/xenha_lab $(DESTDIR)$(LABLIBDIR)/xenha_lab
	install -d $(DESTDIR)$(LABLIBDIR)/xenha_lab/realkernel/files
	install -m 0644 lib/xenha_lab/realkernel/files/* $(DESTDIR)$(LABLIBDIR)/xenha_lab/realkernel/files/
	for spec in $(SIM_TOOLS); do tool=$${spec%%:*}; module=$${spec#*:}; \
		sed -e 's|@PYTHON@|$(PYTHON)|g' -e 's|@PYLIBDIR@|$(PYLIBDIR)|g' -e 's|@LABLIBDIR@|$(LABLIBDIR)|g' \
			-e "s|@TOOL@|$$tool|g" -e "s|@MODULE@|$$module|g" bin/sim-tool.in \
			> $(DESTDIR)$(SIMBINDIR)/$$tool; \
		chmod 0755 $(DESTDIR)$(SIMBINDIR)/$$tool; done
	install -d $(DESTDIR)$(LABSBINDIR)
	sed -e 's|@PYTHON@|$(PYTHON)|g' -e 's|@LABLIBDIR@|$(LABLIBDIR)|g' \
		bin/fence_xenha_lab.in > $(DESTDIR)$(LABSBINDIR)/fence_xenha_lab
	chmod 0755 $(DESTDIR)$(LABSBINDIR)/fence_xenha_lab

# A complete install tree under build/stage, to look at; demo, test and bench each
# install into a tree of their own (scripts/run-staged) and see it at the real paths.
stage:
	rm -rf $(STAGE)
	$(MAKE) --no-print-directory install install-lab DESTDIR=$(abspath $(STAGE))

demo: deps
	scripts/run-staged $(SBINDIR)/xenha demo

test: deps venv
	scripts/run-staged env XENHA_STAGED=1 XENHA_SBINDIR=$(SBINDIR) \
		XENHA_SIMBINDIR=$(SIMBINDIR) XENHA_PROVIDER_DIR=$(PROVIDER_DIR) \
		$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

# The real-kernel tier (tests/real): QEMU nodes with Xen 4.17, the kernel's DRBD 8.4,
# device-mapper/LVM and Pacemaker; node images from Debian packages, cached in build/real.
# Needs root, 2 cores, about 5 GB of free memory; fails (never skips) where it cannot run.
REAL_ENV = XENHA_STAGED=1 XENHA_REAL_TIER=1 XENHA_REAL_BUILD=$(abspath $(BUILD))/real \
	XENHA_LAB_LOGS=$(abspath $(BUILD))/real-tests/logs XENHA_PYLIBDIR=$(PYLIBDIR) XENHA_LABLIBDIR=$(LABLIBDIR) \
	XENHA_SBINDIR=$(SBINDIR) XENHA_SIMBINDIR=$(SIMBINDIR) XENHA_PROVIDER_DIR=$(PROVIDER_DIR)
# what CI runs after `make test`: first start, live migration, power-cut failover
REAL_CI_TESTS = first_start or pcs_resource_move or power_cut

real-images: deps venv
	XENHA_REAL_BUILD=$(abspath $(BUILD))/real $(VENV)/bin/python -m xenha_lab.realkernel.image

# an outer bound on top of every wait's own: SIGINT lets pytest tear the lab down (no QEMU left)
REAL_BOUND = timeout --signal=INT --kill-after=120

test-real: real-images
	scripts/run-staged env $(REAL_ENV) $(REAL_BOUND) 2400 $(VENV)/bin/python -m pytest tests/real $(PYTEST_ARGS)

test-real-ci: real-images
	scripts/run-staged env $(REAL_ENV) $(REAL_BOUND) 1800 $(VENV)/bin/python -m pytest tests/real -k '$(REAL_CI_TESTS)' \
		$(PYTEST_ARGS)

# ends with the real-kernel part where the real tier can run (several minutes: two QEMU
# nodes booted for it); XENHA_BENCH_REAL=0 leaves it out
bench: deps venv
	scripts/run-staged env $(REAL_ENV) XENHA_SIMBINDIR=$(SIMBINDIR) \
		XENHA_PROVIDER_DIR=$(PROVIDER_DIR) $(VENV)/bin/python -m xenha_lab.bench

clean:
	rm -rf $(BUILD) $(VENV) lib/xenha.egg-info
	find lib tests -name __pycache__ -type d -prune -exec rm -rf {} +
