"""Re-provisioning a replica: one whose data directory holds another cluster is refused and
kept, until postgres_hr_replica_reclone moves it aside; a new host's empty cluster is replaced
by a clone without asking. Each run leaves the primary and the other replica unchanged.

Runs last: it rebuilds the second replica's cluster and converges all three containers again.
"""

from __future__ import annotations

from conftest import (CLUSTER, DATA_DIR, MAJOR, MAX_LAG_S, PRIMARY, REPLICAS, PlaybookRun,
                      ansible_playbook, checked, replays, run_in, superuser_sql, wait_for)

REPLICA = REPLICAS[-1]
UNTOUCHED = [PRIMARY, *REPLICAS[:-1]]
REPLACED_GLOB = f'{DATA_DIR}.replaced-*'


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


def test_a_new_empty_cluster_is_replaced_by_a_clone_without_asking(
        replication_password: str, readonly_password: str) -> None:
    new_cluster_on_replica(with_data=False)
    before = replaced_directories()

    run = ansible_playbook()

    assert run.returncode == 0, run.stderr[-3000:]
    assert_untouched(run)
    assert run.stats(REPLICA)['changed'] > 0
    assert_streams_again()
    assert replaced_directories() == before, 'an empty cluster was kept instead of deleted'
    # The re-run doubles as the check that -vvv output carries no password.
    again = ansible_playbook('-vvv')
    assert again.returncode == 0
    assert all(again.stats(host)['changed'] == 0 for host in [PRIMARY, *REPLICAS])
    output = again.stdout + again.stderr
    assert replication_password not in output and readonly_password not in output
