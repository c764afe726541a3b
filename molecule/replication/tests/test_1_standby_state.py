"""The topology the converge made: the primary serves writes, each replica is a hot standby
streaming from it through a slot of its own, and replication is open to the replicas only."""

from __future__ import annotations

import os

import pytest

from conftest import (DATA_DIR, MAJOR, PASSFILE, PORT, PRIMARY, REPLICAS, REPLICATION_ROLE,
                      address_of, podman, root_host, slot_name, superuser_sql)


def test_primary_is_not_in_recovery() -> None:
    assert superuser_sql(PRIMARY, 'SELECT pg_is_in_recovery()').rows == [['f']]


@pytest.mark.parametrize('replica', REPLICAS)
def test_replica_is_a_hot_standby_streaming_from_the_primary(replica: str) -> None:
    assert superuser_sql(replica, 'SELECT pg_is_in_recovery()').rows == [['t']]
    receiver = superuser_sql(replica, 'SELECT status, slot_name, sender_host '
                                      'FROM pg_stat_wal_receiver').rows
    assert receiver == [['streaming', slot_name(replica), address_of(PRIMARY)]]
    assert root_host(replica).file(f'{DATA_DIR}/standby.signal').exists


@pytest.mark.parametrize('replica', REPLICAS)
def test_replica_has_the_primary_system_identifier(replica: str) -> None:
    sql = 'SELECT system_identifier FROM pg_control_system()'
    assert superuser_sql(replica, sql).rows == superuser_sql(PRIMARY, sql).rows


def test_primary_has_one_active_slot_per_replica() -> None:
    slots = superuser_sql(PRIMARY, 'SELECT slot_name, slot_type, active FROM pg_replication_slots '
                                   'ORDER BY slot_name').rows
    assert slots == sorted([slot_name(replica), 'physical', 't'] for replica in REPLICAS)
    senders = superuser_sql(PRIMARY, 'SELECT application_name, usename, state, client_addr '
                                     'FROM pg_stat_replication ORDER BY application_name').rows
    assert senders == sorted([slot_name(replica), REPLICATION_ROLE, 'streaming',
                              address_of(replica)] for replica in REPLICAS)


def test_replication_role_may_replicate_and_nothing_else() -> None:
    rows = superuser_sql(PRIMARY, 'SELECT rolcanlogin, rolreplication, rolsuper, '
                                  "rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid "
                                  f"WHERE rolname = '{REPLICATION_ROLE}'").rows
    assert rows == [['t', 't', 'f', 't']]


def test_replication_rules_name_the_replicas_only() -> None:
    rules = superuser_sql(PRIMARY, "SELECT type, address, netmask, auth_method "
                                   "FROM pg_hba_file_rules WHERE database = '{replication}' "
                                   f"AND user_name = '{{{REPLICATION_ROLE}}}' "
                                   'ORDER BY line_number').rows
    allowed = [rule for rule in rules if rule[3] == 'scram-sha-256']
    assert sorted(allowed) == sorted(['host', address_of(replica), '255.255.255.255',
                                      'scram-sha-256'] for replica in REPLICAS)
    # Everything after the replicas' rules refuses the role.
    assert [rule[3] for rule in rules[len(allowed):]] == ['reject', 'reject']


def test_replication_from_an_address_that_is_no_replica_is_refused(
        replication_password: str) -> None:
    # The primary connecting to its own network address: right role and password, wrong host.
    conninfo = (f'host={address_of(PRIMARY)} port={PORT} user={REPLICATION_ROLE} '
                'replication=true connect_timeout=10')
    out = podman('exec', '--env', 'PGPASSWORD', PRIMARY, 'psql', conninfo, '-c',
                 'IDENTIFY_SYSTEM', env=dict(os.environ, PGPASSWORD=replication_password))
    assert out.returncode != 0
    assert 'pg_hba.conf rejects replication connection' in out.stderr


def test_replication_password_is_not_in_the_primary_log(replication_password: str) -> None:
    log = root_host(PRIMARY).file(f'/var/log/postgresql/postgresql-{MAJOR}-main.log')
    assert replication_password not in log.content_string


@pytest.mark.parametrize('replica', REPLICAS)
def test_replication_password_is_only_in_the_passfile(replica: str,
                                                      replication_password: str) -> None:
    host = root_host(replica)
    passfile = host.file(PASSFILE)
    assert (passfile.user, passfile.group, passfile.mode) == ('postgres', 'postgres', 0o600)
    assert replication_password in passfile.content_string
    conninfo = superuser_sql(replica, 'SHOW primary_conninfo').rows[0][0]
    assert f'passfile={PASSFILE}' in conninfo and 'password' not in conninfo
    # Configuration anyone on the host can read, and the server log.
    for path in (f'/etc/postgresql/{MAJOR}/main/conf.d/postgres_hr.conf',
                 f'{DATA_DIR}/postgresql.auto.conf',
                 f'/var/log/postgresql/postgresql-{MAJOR}-main.log'):
        assert replication_password not in host.file(path).content_string, path
