# Two commands matter: `make site` provisions this machine, `make test` proves the project.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCAL_VAULT_PASS := inventories/local/.vault_pass
LOCAL_VAULT_VARS := inventories/local/group_vars/all/vault.yml
# Inventory `make rekey` re-encrypts, and the vault password file it replaces.
REKEY_INVENTORY ?= inventories/local
REKEY_PASSWORD_FILE ?= $(REKEY_INVENTORY)/.vault_pass
# Scenarios `make test` runs, in order.
MOLECULE_SCENARIOS ?= default failure_paths rotation replication

export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

.PHONY: help site drift rotate rekey test lint unit e2e molecule bench host-packages clean

help:
	@echo "make site   provision the HR database on this machine (ansible-playbook site.yml)"
	@echo "make rotate rotate the read-only role's password (playbooks/rotate_readonly_password.yml)"
	@echo "make rekey  re-encrypt the inventory's vault files under a new vault password"
	@echo "            (REKEY_INVENTORY=$(REKEY_INVENTORY), REKEY_PASSWORD_FILE=$(REKEY_PASSWORD_FILE))"
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

# New vault password for every vault file of an inventory; an interrupted run is finished by
# running it again (see README, Vault key rotation).
# A new read-only password: staged in the vault, set and tried on every host, then promoted;
# rolled back everywhere on any failure. ANSIBLE_ARGS=--check says what it would do.
rotate: $(BIN)/.installed
	$(BIN)/ansible-playbook playbooks/rotate_readonly_password.yml \
		--vault-id local@$(LOCAL_VAULT_PASS) $(ANSIBLE_ARGS)

rekey: $(BIN)/.installed
	ANSIBLE_VAULT=$(BIN)/ansible-vault scripts/rekey-vault $(REKEY_PASSWORD_FILE) $(REKEY_INVENTORY)

# Packages the tests need on this machine: a PostgreSQL server for the throwaway clusters.
host-packages:
	@scripts/install-host-packages postgresql

lint: $(BIN)/.installed
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint --profile production
	$(BIN)/flake8 library action_plugins module_utils doc_fragments tests molecule bench

unit: $(BIN)/.installed host-packages
	$(BIN)/pytest -q tests/modules tests/scripts

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
