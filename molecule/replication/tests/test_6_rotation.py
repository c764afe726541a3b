"""Rotating the read-only password with replicas: the primary takes the new password, the
replicas replay it, and the rotation logs in on all three before it promotes it in the vault.

Runs after the re-provisioning tests, on the three containers as they left them.
"""

from __future__ import annotations

import os
import pathlib

import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

from conftest import ALL_HOSTS, PRIMARY, REPLICAS, ansible_playbook, readonly_sql

COUNT_SQL = 'SELECT count(*) FROM employees'


def current_vault() -> dict[str, str]:
    vault_dir = pathlib.Path(os.environ['MOLECULE_EPHEMERAL_DIRECTORY']) / 'vault'
    secret = VaultSecret((vault_dir / 'password').read_bytes().strip())
    return yaml.safe_load(VaultLib([('default', secret)]).decrypt(
        (vault_dir / 'vars.yml').read_bytes()))


def test_rotation_sets_the_primary_and_reaches_every_replica() -> None:
    before = current_vault()
    old = before['vault_postgres_hr_readonly_password']

    run = ansible_playbook(playbook='rotate.yml')

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    after = current_vault()
    new = after['vault_postgres_hr_readonly_password']
    assert new != old
    # The rest of the vault file, the replication password included, is kept as it was.
    assert after['vault_postgres_hr_replication_password'] == \
        before['vault_postgres_hr_replication_password']
    assert not {key for key in after if 'pending' in key}
    # Only the primary is changed; a replica's server would refuse the ALTER ROLE.
    assert run.stats(PRIMARY)['changed'] > 0
    for replica in REPLICAS:
        assert run.stats(replica)['changed'] == 0, replica
    for host in ALL_HOSTS:
        assert readonly_sql(host, new, COUNT_SQL).rc == 0, host
        assert readonly_sql(host, old, COUNT_SQL).rc != 0, host
    assert new not in run.stdout + run.stderr and old not in run.stdout + run.stderr


def test_converge_after_the_rotation_changes_nothing() -> None:
    run = ansible_playbook()

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    for host in ALL_HOSTS:
        assert run.stats(host)['changed'] == 0, (host, run.stats(host))
