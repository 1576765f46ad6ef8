# The two commands: `make lab` provisions the local lab with site.yml and
# `make test` runs every test. Both install what they need first.

SHELL := /bin/bash
VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
# Podman reads the lab's settings from this file instead of /etc.
export CONTAINERS_CONF := $(CURDIR)/lab/containers.conf
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: deps lab lab-up lab-down lab-purge lab-status test lint unit molecule

deps:
	lab/setup-machine

lab-up: deps
	lab/labctl up

# Provision the lab fleet end to end; the last play prints the fleet table.
lab: lab-up
	ansible-playbook -i inventory/lab site.yml

lab-down:
	lab/labctl down

lab-purge:
	lab/labctl down --purge

lab-status:
	lab/labctl status

# The lab converges first: it proves the main command on this machine, and
# tests/diagnostics runs against it (FLEET_REQUIRE_LAB=1 makes a missing lab
# fail those tests instead of skipping them).
test: deps lint lab
	$(MAKE) unit FLEET_REQUIRE_LAB=1
	$(MAKE) molecule

lint:
	yamllint --strict .
	ansible-lint --profile production
	ruff check .
	ruff format --check .

# Module, emulator and lab tests against the emulator and a Tansu broker on
# loopback. tests/consumers deploys consumers to the lab's Docker Engine and
# Tansu, so the lab's shared services start first.
unit: deps
	lab/labctl up --no-hosts
	FLEET_REQUIRE_LAB=$(FLEET_REQUIRE_LAB) pytest tests

# The full fleet in podman containers, converged twice, checked in check mode
# and verified with testinfra. Needs the lab's images, broker and Docker Engine.
# The log's failed checks are printed again at the end, where a CI log's tail
# shows them, instead of scrolled away behind the scenario recap.
MOLECULE_LOG := $(CURDIR)/.lab/molecule.log
molecule: deps
	lab/labctl up --no-hosts
	mkdir -p $(dir $(MOLECULE_LOG))
	set -o pipefail; molecule test --all 2>&1 | tee $(MOLECULE_LOG) || { \
	  echo "molecule failed; its failed checks, from $(MOLECULE_LOG):"; \
	  sed -E 's/\x1b\[[0-9;]*m//g; s/^ *│ ?//' $(MOLECULE_LOG) \
	    | grep -E '^(FAILED|ERROR) |^E +|fatal: \[|^(AssertionError|assert )' \
	    | grep -v 'FAILED - RETRYING' | tail -n 60; \
	  exit 1; }
