"""A replica that was down while the primary changed catches up once it runs again, through its
slot, which kept the WAL it missed."""

from __future__ import annotations

import uuid

from conftest import (CLUSTER, MAJOR, MAX_LAG_S, PRIMARY, REPLICAS, checked, replays, run_in,
                      slot_name, superuser_sql, wait_for, wait_until_ready)

SLOT_SQL = "SELECT active FROM pg_replication_slots WHERE slot_name = '{slot}'"


def test_a_restarted_replica_catches_up(running_replicas_afterwards: None) -> None:
    replica = REPLICAS[0]
    slot_sql = SLOT_SQL.format(slot=slot_name(replica))
    checked(run_in(replica, f'pg_ctlcluster {MAJOR} {CLUSTER} stop'), f'stop on {replica}')
    wait_for(replays(PRIMARY, slot_sql, [['f']]), MAX_LAG_S,
             f'slot of {replica} becoming inactive on the primary')

    table = 'restart_probe_' + uuid.uuid4().hex[:8]
    superuser_sql(PRIMARY, f'CREATE TABLE {table} AS SELECT generate_series(1, 1000) AS n')
    try:
        checked(run_in(replica, f'pg_ctlcluster {MAJOR} {CLUSTER} start'), f'start on {replica}')
        wait_until_ready(replica)
        wait_for(replays(replica, f"SELECT count(*) FROM {table}", [['1000']]), MAX_LAG_S,
                 f'table {table}, made while {replica} was down, on {replica}')
        wait_for(replays(replica, 'SELECT status FROM pg_stat_wal_receiver', [['streaming']]),
                 MAX_LAG_S, f'{replica} streaming again')
        assert superuser_sql(PRIMARY, slot_sql).rows == [['t']]
    finally:
        superuser_sql(PRIMARY, f'DROP TABLE {table}')
