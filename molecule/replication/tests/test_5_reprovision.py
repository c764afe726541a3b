"""Re-provisioning a replica: one whose data directory holds another cluster is refused and
kept, until postgres_hr_replica_reclone moves it aside; taken out of the inventory, its slot
and pg_hba.conf rule go from the primary; added back as a new host with an empty cluster, it
is cloned without asking. No run changes the other replica; only adding and removing change
the primary.

Runs last: it rebuilds the second replica's cluster and converges all three containers again.
"""

from __future__ import annotations

import pathlib

from conftest import (CLUSTER, DATA_DIR, MAJOR, MAX_LAG_S, PRIMARY, REPLICAS, PlaybookRun,
                      address_of, ansible_playbook, checked, inventory_without, replays, run_in,
                      slot_name, superuser_sql, wait_for)

REPLICA = REPLICAS[-1]
UNTOUCHED = [PRIMARY, *REPLICAS[:-1]]
REPLACED_GLOB = f'{DATA_DIR}.replaced-*'
SLOT_ACTIVE_SQL = "SELECT active FROM pg_replication_slots WHERE slot_name = '{slot}'"


def new_cluster_on_replica(with_data: bool) -> None:
    """Drop the replica's cluster and create a new one, as on a host that never replicated."""
    checked(run_in(REPLICA, f'pg_dropcluster --stop {MAJOR} {CLUSTER} && '
                            f'pg_createcluster --start {MAJOR} {CLUSTER}'),
            f'new cluster on {REPLICA}')
    if with_data:
        checked(run_in(REPLICA, 'createdb other_app && psql -X -q -d other_app -c '
                                '"CREATE TABLE kept AS SELECT 42 AS answer"', user='postgres'),
                f'database other_app on {REPLICA}')


def replaced_directories() -> list[str]:
    out = run_in(REPLICA, f'ls -d {REPLACED_GLOB} 2>/dev/null || true')
    return out.stdout.split()


def assert_untouched(run: PlaybookRun) -> None:
    for host in UNTOUCHED:
        stats = run.stats(host)
        assert stats['changed'] == 0 and stats['failures'] == 0, (host, stats)


def assert_streams_again() -> None:
    assert superuser_sql(REPLICA, 'SELECT pg_is_in_recovery()').rows == [['t']]
    wait_for(replays(REPLICA, 'SELECT status FROM pg_stat_wal_receiver', [['streaming']]),
             MAX_LAG_S, f'{REPLICA} streaming')
    count_sql = 'SELECT count(*) FROM employees'
    wait_for(replays(REPLICA, count_sql, superuser_sql(PRIMARY, count_sql).rows), MAX_LAG_S,
             f'the employees of {PRIMARY} on {REPLICA}')


def test_a_replica_holding_another_cluster_is_refused_and_kept() -> None:
    new_cluster_on_replica(with_data=True)

    run = ansible_playbook()

    assert run.returncode != 0
    assert run.stats(REPLICA)['failures'] == 1
    message = ' '.join(run.messages(REPLICA))
    assert 'belongs to another cluster' in message and 'postgres_hr_replica_reclone' in message
    assert superuser_sql(REPLICA, 'SELECT answer FROM kept', database='other_app').rows == [['42']]
    assert superuser_sql(REPLICA, 'SELECT pg_is_in_recovery()', database='postgres').rows \
        == [['f']]
    assert_untouched(run)


def test_reclone_moves_the_other_cluster_aside_and_clones_the_primary() -> None:
    before = replaced_directories()

    run = ansible_playbook('-e', 'postgres_hr_replica_reclone=true')

    assert run.returncode == 0, run.stderr[-3000:]
    assert_untouched(run)
    assert_streams_again()
    moved = sorted(set(replaced_directories()) - set(before))
    assert len(moved) == 1, moved
    # The other cluster's files, whole: its own catalog and the database that was in it.
    checked(run_in(REPLICA, f'test -s {moved[0]}/PG_VERSION && test -d {moved[0]}/base'),
            f'the data directory moved aside on {REPLICA}')
    checked(run_in(REPLICA, f'rm -rf {moved[0]}'), 'removing the moved data directory')


def test_a_replica_taken_out_of_the_inventory_loses_its_slot_and_rule(
        tmp_path: pathlib.Path) -> None:
    checked(run_in(REPLICA, f'pg_ctlcluster {MAJOR} {CLUSTER} stop'), f'stop on {REPLICA}')
    wait_for(replays(PRIMARY, SLOT_ACTIVE_SQL.format(slot=slot_name(REPLICA)), [['f']]),
             MAX_LAG_S, f'slot of {REPLICA} becoming inactive')

    run = ansible_playbook(inventory=inventory_without(REPLICA, tmp_path))

    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stats(PRIMARY)['changed'] > 0
    assert all(run.stats(host)['changed'] == 0 for host in UNTOUCHED if host != PRIMARY)
    assert superuser_sql(PRIMARY, 'SELECT slot_name FROM pg_replication_slots '
                                  'ORDER BY 1').rows == [[slot_name(r)] for r in UNTOUCHED[1:]]
    hba = superuser_sql(PRIMARY, "SELECT address FROM pg_hba_file_rules "
                                 "WHERE database = '{replication}' AND auth_method <> 'reject' "
                                 "AND type = 'host'").rows
    assert [address_of(REPLICA)] not in hba and len(hba) == len(UNTOUCHED) - 1


def test_a_new_host_added_to_the_inventory_is_cloned_without_asking(
        replication_password: str, readonly_password: str) -> None:
    # A new host: Debian's package made an empty cluster, which the role replaces.
    new_cluster_on_replica(with_data=False)
    before = replaced_directories()

    run = ansible_playbook()

    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stats(PRIMARY)['changed'] > 0, 'the primary needs a slot and rule for it'
    assert all(run.stats(host)['changed'] == 0 for host in UNTOUCHED if host != PRIMARY)
    assert run.stats(REPLICA)['changed'] > 0
    assert_streams_again()
    assert replaced_directories() == before, 'an empty cluster was kept instead of deleted'
    # The re-run doubles as the check that -vvv output carries no password.
    again = ansible_playbook('-vvv')
    assert again.returncode == 0
    assert all(again.stats(host)['changed'] == 0 for host in [PRIMARY, *REPLICAS])
    output = again.stdout + again.stderr
    assert replication_password not in output and readonly_password not in output
