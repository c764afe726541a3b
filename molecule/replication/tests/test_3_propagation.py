"""A row updated on the primary is visible on every replica within the lag bound."""

from __future__ import annotations

import uuid

from conftest import MAX_LAG_S, PRIMARY, REPLICAS, replays, superuser_sql, wait_for

ROW_SQL = 'SELECT first_name FROM employees WHERE employee_id = {id}'


def test_an_update_on_the_primary_reaches_every_replica_within_the_bound() -> None:
    employee_id, original = superuser_sql(
        PRIMARY, 'SELECT employee_id, first_name FROM employees ORDER BY employee_id LIMIT 1'
    ).rows[0]
    marker = 'Repl' + uuid.uuid4().hex[:8]
    sql = ROW_SQL.format(id=employee_id)
    try:
        superuser_sql(PRIMARY, f"UPDATE employees SET first_name = '{marker}' "
                               f'WHERE employee_id = {employee_id}')
        for replica in REPLICAS:
            took = wait_for(replays(replica, sql, [[marker]]), MAX_LAG_S,
                            f'the update of employee {employee_id} on {replica}')
            assert took < MAX_LAG_S
    finally:
        superuser_sql(PRIMARY, f"UPDATE employees SET first_name = '{original}' "
                               f'WHERE employee_id = {employee_id}')
    for replica in REPLICAS:
        wait_for(replays(replica, sql, [[original]]), MAX_LAG_S,
                 f'the restored name of employee {employee_id} on {replica}')
