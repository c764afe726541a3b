"""Data and grants survive a restart of the PostgreSQL service and, where systemd runs the
container, a restart of the whole container (the service must come back by itself)."""

from __future__ import annotations

from typing import Any, Callable

import pytest

from conftest import (CLUSTER, Platform, PsqlResult, podman, wait_until_ready)

pytestmark = pytest.mark.restarts

# Row count and a digest of every row: equal before and after means no data was lost.
SNAPSHOT_SQL = """
SELECT count(*), md5(coalesce(string_agg(e::text, ',' ORDER BY employee_id), ''))
FROM employees AS e
"""


def assert_intact(before: list[list[str]], superuser_sql: Callable[..., PsqlResult],
                  readonly_sql: Callable[..., PsqlResult]) -> None:
    assert superuser_sql(SNAPSHOT_SQL).rows == before, 'employees changed across the restart'
    select = readonly_sql('SELECT count(*) FROM employees')
    assert select.rc == 0, f'read-only SELECT failed after the restart: {select.stderr}'
    assert select.rows == [[before[0][0]]]
    update = readonly_sql(
        'BEGIN READ WRITE; UPDATE employees SET first_name = first_name; ROLLBACK;')
    assert update.sqlstate == '42501', 'read-only role could write after the restart'


def test_data_and_grants_survive_a_service_restart(
        host: Any, platform: Platform, superuser_sql: Callable[..., PsqlResult],
        readonly_sql: Callable[..., PsqlResult]) -> None:
    before = superuser_sql(SNAPSHOT_SQL).rows
    if platform.systemd:
        command = f'systemctl restart {platform.service}'
    else:
        command = f'pg_ctlcluster {platform.postgresql_major} {CLUSTER} restart'
    restart = host.run(command)
    assert restart.rc == 0, f'{command} failed: {restart.stderr}'
    wait_until_ready(host, platform)
    assert_intact(before, superuser_sql, readonly_sql)


def test_data_and_grants_survive_a_container_restart(
        host: Any, platform: Platform, superuser_sql: Callable[..., PsqlResult],
        readonly_sql: Callable[..., PsqlResult]) -> None:
    if not platform.systemd:
        pytest.skip('no init system in this container: nothing starts the cluster at boot')
    before = superuser_sql(SNAPSHOT_SQL).rows
    restart = podman('restart', platform.name)
    assert restart.returncode == 0, f'podman restart {platform.name}: {restart.stderr}'
    wait_until_ready(host, platform)
    assert host.service(platform.service).is_running
    assert_intact(before, superuser_sql, readonly_sql)
