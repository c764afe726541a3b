"""Every host answers the application's questions alike as the read-only role, and a replica
refuses writes from anyone, its superuser included."""

from __future__ import annotations

import pytest

from conftest import ALL_HOSTS, PRIMARY, REPLICAS, readonly_sql, superuser_sql

SCENARIOS = {
    'recent_hires': "hire_date >= CURRENT_DATE - INTERVAL '6 months'",
    'engineering_high_earners': "department = 'Engineering' AND salary_usd > 120000",
    'parental_leave': "leave_type = 'Parental Leave'",
    'managed_by_john_doe': "manager_name = 'John Doe'",
}
COUNTS_SQL = 'SELECT ' + ', '.join(
    f'count(*) FILTER (WHERE {predicate}) AS {name}' for name, predicate in SCENARIOS.items()
) + ', count(*) FROM employees'


def test_every_host_counts_the_same_as_the_read_only_role(readonly_password: str) -> None:
    counts = {}
    for host in ALL_HOSTS:
        result = readonly_sql(host, readonly_password, COUNTS_SQL)
        assert result.rc == 0, f'{host}: {result.stderr}'
        counts[host] = result.rows
    assert all(int(count) > 0 for count in counts[PRIMARY][0]), counts
    assert all(rows == counts[PRIMARY] for rows in counts.values()), counts


@pytest.mark.parametrize('replica', REPLICAS)
@pytest.mark.parametrize('statement', [
    "UPDATE employees SET first_name = 'x'",
    'DELETE FROM employees',
    'CREATE TABLE intruder (id int)',
    'CREATE ROLE intruder LOGIN SUPERUSER',
])
def test_a_write_on_a_replica_fails_even_as_superuser(replica: str, statement: str) -> None:
    # Switching the read-only default off changes nothing: a hot standby runs every
    # transaction read-only, whoever asks (SQLSTATE 25006).
    result = superuser_sql(replica, f'SET default_transaction_read_only = off; {statement}',
                           check=False)
    assert result.rc != 0
    assert result.sqlstate == '25006', result.stderr


@pytest.mark.parametrize('replica', REPLICAS)
def test_a_read_write_transaction_on_a_replica_is_refused_as_superuser(replica: str) -> None:
    result = superuser_sql(replica, "BEGIN READ WRITE; UPDATE employees SET first_name = 'x';",
                           check=False)
    assert result.rc != 0
    assert result.sqlstate == '0A000', result.stderr
    assert 'during recovery' in result.stderr


@pytest.mark.parametrize('replica', REPLICAS)
def test_a_write_on_a_replica_fails_as_the_read_only_role(replica: str,
                                                          readonly_password: str) -> None:
    result = readonly_sql(replica, readonly_password,
                          "SET default_transaction_read_only = off; "
                          "UPDATE employees SET first_name = 'x'")
    assert result.rc != 0
    assert result.sqlstate == '25006', result.stderr
