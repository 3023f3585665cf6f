# xenha — highly available Xen domains on DRBD-replicated LVM, run by Pacemaker.
# The two commands a newcomer needs (README.md): `make demo` and `make test`.

PYTHON    ?= /usr/bin/python3
PREFIX    ?= /usr/local
DESTDIR   ?=
OCF_ROOT  ?= /usr/lib/ocf
PYLIBDIR  ?= $(PREFIX)/lib/xenha
SBINDIR   ?= $(PREFIX)/sbin
PROVIDER_DIR = $(OCF_ROOT)/resource.d/xenha
SIMBINDIR = $(PYLIBDIR)/sim-bin

AGENTS    = xen-domain lvm-volume drbd-resource
# simulated tool name : module providing main()
HANDLERS  = xenha-resync-snapshot:xenha.handlers.resync_snapshot
# lvm2 commands (real lvm2 underneath, activation simulated) and dmsetup
LVM_SIM_TOOLS = lvm:xenha.sim.lvm lvs:xenha.sim.lvm vgs:xenha.sim.lvm pvs:xenha.sim.lvm lvchange:xenha.sim.lvm vgchange:xenha.sim.lvm lvcreate:xenha.sim.lvm lvremove:xenha.sim.lvm lvconvert:xenha.sim.lvm lvextend:xenha.sim.lvm lvreduce:xenha.sim.lvm lvresize:xenha.sim.lvm lvrename:xenha.sim.lvm vgrename:xenha.sim.lvm vgremove:xenha.sim.lvm vgcfgbackup:xenha.sim.lvm vgcfgrestore:xenha.sim.lvm lvmconfig:xenha.sim.lvm lvmdump:xenha.sim.lvm lvdisplay:xenha.sim.lvm lvscan:xenha.sim.lvm vgdisplay:xenha.sim.lvm pvdisplay:xenha.sim.lvm pvcreate:xenha.sim.lvm pvremove:xenha.sim.lvm pvchange:xenha.sim.lvm pvscan:xenha.sim.lvm pvresize:xenha.sim.lvm vgcreate:xenha.sim.lvm vgextend:xenha.sim.lvm vgreduce:xenha.sim.lvm vgexport:xenha.sim.lvm vgimport:xenha.sim.lvm vgscan:xenha.sim.lvm vgck:xenha.sim.lvm vgmknodes:xenha.sim.lvm lvmdiskscan:xenha.sim.lvm lvmsadc:xenha.sim.lvm lvmsar:xenha.sim.lvm pvck:xenha.sim.lvm pvmove:xenha.sim.lvm lvmdevices:xenha.sim.lvm vgimportdevices:xenha.sim.lvm vgsplit:xenha.sim.lvm vgmerge:xenha.sim.lvm vgconvert:xenha.sim.lvm
SIM_TOOLS = xl:xenha.sim.xl xenha-sim-ssh:xenha.sim.transport drbdsetup:xenha.sim.drbdsetup drbdsetup-84:xenha.sim.drbdsetup84 $(LVM_SIM_TOOLS) dmsetup:xenha.sim.dmsetup

BUILD     = build
STAGE     = $(BUILD)/stage
VENV      = .venv
PYTEST_ARGS ?=

.PHONY: all demo test bench install deps venv stage clean

all: stage

deps:
	scripts/install-debian-packages

venv: $(VENV)/.stamp
$(VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

install:
	install -d $(DESTDIR)$(PYLIBDIR) $(DESTDIR)$(PROVIDER_DIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(SIMBINDIR)
	rm -rf $(DESTDIR)$(PYLIBDIR)/xenha
	cd lib && find xenha -name '*.py' | while read -r f; do \
		install -D -m 0644 "$$f" "$(abspath $(DESTDIR))$(PYLIBDIR)/$$f"; done
	$(PYTHON) -m compileall -q -d $(PYLIBDIR)/xenha $(DESTDIR)$(PYLIBDIR)/xenha
	install -d $(DESTDIR)$(PYLIBDIR)/examples
	install -m 0644 cluster-config/examples/*.toml $(DESTDIR)$(PYLIBDIR)/examples/
	for agent in $(AGENTS); do \
		sed -e 's|@PYTHON@|$(PYTHON)|g' -e 's|@PYLIBDIR@|$(PYLIBDIR)|g' agents/$$agent.in \
			> $(DESTDIR)$(PROVIDER_DIR)/$$agent; \
		chmod 0755 $(DESTDIR)$(PROVIDER_DIR)/$$agent; done
	sed -e 's|@PYTHON@|$(PYTHON)|g' -e 's|@PYLIBDIR@|$(PYLIBDIR)|g' bin/xenha.in > $(DESTDIR)$(SBINDIR)/xenha
	chmod 0755 $(DESTDIR)$(SBINDIR)/xenha
	for spec in $(HANDLERS); do tool=$${spec%%:*}; module=$${spec#*:}; \
		sed -e 's|@PYTHON@|$(PYTHON)|g' -e 's|@PYLIBDIR@|$(PYLIBDIR)|g' \
			-e "s|@TOOL@|$$tool|g" -e "s|@MODULE@|$$module|g" bin/handler.in \
			> $(DESTDIR)$(SBINDIR)/$$tool; \
		chmod 0755 $(DESTDIR)$(SBINDIR)/$$tool; done
	for spec in $(SIM_TOOLS); do tool=$${spec%%:*}; module=$${spec#*:}; \
		sed -e 's|@PYTHON@|$(PYTHON)|g' -e 's|@PYLIBDIR@|$(PYLIBDIR)|g' \
			-e "s|@TOOL@|$$tool|g" -e "s|@MODULE@|$$module|g" bin/sim-tool.in \
			> $(DESTDIR)$(SIMBINDIR)/$$tool; \
		chmod 0755 $(DESTDIR)$(SIMBINDIR)/$$tool; done

# A complete install tree under build/stage, to look at; demo, test and bench each
# install into a tree of their own (scripts/run-staged) and see it at the real paths.
stage:
	rm -rf $(STAGE)
	$(MAKE) --no-print-directory install DESTDIR=$(abspath $(STAGE))

demo: deps
	scripts/run-staged $(SBINDIR)/xenha demo

test: deps venv
	scripts/run-staged env XENHA_STAGED=1 XENHA_SBINDIR=$(SBINDIR) \
		XENHA_SIMBINDIR=$(SIMBINDIR) XENHA_PROVIDER_DIR=$(PROVIDER_DIR) \
		$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

bench: deps venv
	scripts/run-staged env XENHA_SIMBINDIR=$(SIMBINDIR) \
		XENHA_PROVIDER_DIR=$(PROVIDER_DIR) $(VENV)/bin/python -m xenha.bench

clean:
	rm -rf $(BUILD) $(VENV) lib/xenha.egg-info
	find lib tests -name __pycache__ -type d -prune -exec rm -rf {} +
