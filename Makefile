# Two commands matter: `make site` provisions this machine, `make test` proves the project.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCAL_VAULT_PASS := inventories/local/.vault_pass
LOCAL_VAULT_VARS := inventories/local/group_vars/all/vault.yml
# Scenarios `make test` runs, in order.
MOLECULE_SCENARIOS ?= default failure_paths replication

export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: help site drift test lint unit e2e molecule bench host-packages clean

help:
	@echo "make site   provision the HR database on this machine (ansible-playbook site.yml)"
	@echo "make test   lint, module tests, end-to-end converge and molecule scenarios"

# The virtualenv is rebuilt when the pinned requirements change.
$(BIN)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(LOCAL_VAULT_VARS): | $(BIN)/.installed
	ANSIBLE_VAULT=$(BIN)/ansible-vault scripts/bootstrap-vault $(LOCAL_VAULT_PASS) $@

site: $(BIN)/.installed $(LOCAL_VAULT_VARS)
	ANSIBLE_VAULT=$(BIN)/ansible-vault scripts/bootstrap-vault $(LOCAL_VAULT_PASS) $(LOCAL_VAULT_VARS)
	$(BIN)/ansible-playbook site.yml --vault-id local@$(LOCAL_VAULT_PASS) $(ANSIBLE_ARGS)

# Drift from what `make site` makes, reported without repairing it (check mode); fails with
# the list of what a real run would change.
drift: $(BIN)/.installed $(LOCAL_VAULT_VARS)
	$(BIN)/ansible-playbook playbooks/check_drift.yml --check \
		--vault-id local@$(LOCAL_VAULT_PASS) $(ANSIBLE_ARGS)

# Packages the tests need on this machine: a PostgreSQL server for the throwaway clusters.
host-packages:
	@scripts/install-host-packages postgresql

lint: $(BIN)/.installed
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint --profile production
	$(BIN)/flake8 library module_utils doc_fragments tests molecule bench

unit: $(BIN)/.installed host-packages
	$(BIN)/pytest -q tests/modules

e2e: $(BIN)/.installed host-packages
	$(BIN)/pytest -q tests/e2e

molecule: $(BIN)/.installed
	scripts/run-molecule $(MOLECULE_SCENARIOS)

test: lint unit e2e molecule

# Seed speed against psql \copy and executemany, query plans at 1M rows, no-op re-run cost;
# prints a table and writes nothing outside temporary directories. Takes several minutes.
bench: $(BIN)/.installed host-packages
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache
