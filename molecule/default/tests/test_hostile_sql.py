"""Hostile SQL as the read-only role over TCP, on PostgreSQL 15 and 17.

The project's probe suite (tests/probes/hostile_sql.py, which the end-to-end tests also run) is
copied into each container and run there with Debian's python3 and python3-psycopg2, which the
role installs. The password reaches it as PGPASSWORD in the environment of `podman exec --env`,
never on a command line.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
from typing import Any, Callable

import pytest

from conftest import (DATABASE, PORT, READONLY_ROLE, Platform, PsqlResult, podman)

PROJECT_DIR = pathlib.Path(os.environ.get('MOLECULE_PROJECT_DIRECTORY',
                                          pathlib.Path(__file__).resolve().parents[3]))
SUITE = PROJECT_DIR / 'tests' / 'probes' / 'hostile_sql.py'
SUITE_IN_CONTAINER = '/tmp/postgres_hr_hostile_sql.py'
SUITE_TIMEOUT_S = 600


# The same probe module the end-to-end tests import.
sys.path.insert(0, str(SUITE.parent))
import hostile_sql  # noqa: E402

PROBES = hostile_sql.PROBES


def run_suite(container: str, password: str) -> dict[str, Any]:
    copied = podman('cp', str(SUITE), f'{container}:{SUITE_IN_CONTAINER}')
    assert copied.returncode == 0, f'podman cp to {container}: {copied.stderr}'
    out = podman('exec', '--env', 'PGPASSWORD', container, 'python3', SUITE_IN_CONTAINER,
                 '--host', '127.0.0.1', '--port', str(PORT), '--dbname', DATABASE,
                 '--user', READONLY_ROLE, '--json',
                 env=dict(os.environ, PGPASSWORD=password), timeout=SUITE_TIMEOUT_S)
    assert out.returncode in (0, 1), (
        f'probe suite on {container} could not run (exit {out.returncode}): {out.stderr}')
    return json.loads(out.stdout)


@pytest.fixture(scope='module')
def probe_report(platform: Platform, readonly_password: str) -> dict[str, Any]:
    return run_suite(platform.name, readonly_password)


@pytest.mark.parametrize('probe', PROBES, ids=[probe.name for probe in PROBES])
def test_hostile_sql_is_refused_with_its_sqlstate(platform: Platform,
                                                  probe_report: dict[str, Any],
                                                  probe: Any) -> None:
    outcome = next(o for o in probe_report['probes'] if o['name'] == probe.name)
    assert outcome['ok'], (
        f'{platform.name} (PostgreSQL {probe_report["server_version"]}): {probe.name} '
        f'({probe.why}) expected SQLSTATE {probe.expected}, got {outcome["sqlstate"]}: '
        f'{outcome["message"]}')


def test_session_starts_with_the_role_limits(platform: Platform,
                                             probe_report: dict[str, Any]) -> None:
    limits = probe_report['limits']
    expected = {'statement_timeout': '5000ms', 'idle_in_transaction_session_timeout': '10000ms',
                'temp_file_limit': '65536kB', 'default_transaction_read_only': 'on',
                'connection_limit': 20}
    if platform.postgresql_major >= 17:
        expected['transaction_timeout'] = '10000ms'
    assert {key: limits.get(key) for key in expected} == expected
    if platform.postgresql_major < 17:
        assert 'transaction_timeout' not in limits


def test_role_settings_are_set_by_the_superuser_for_all_databases(
        platform: Platform, superuser_sql: Callable[..., PsqlResult]) -> None:
    result = superuser_sql(f"""
        SELECT setdatabase, unnest(setconfig) AS setting
        FROM pg_db_role_setting
        WHERE setrole = '{READONLY_ROLE}'::regrole
        ORDER BY 2
    """)
    expected = ['default_transaction_read_only=on', 'idle_in_transaction_session_timeout=10s',
                'statement_timeout=5s', 'temp_file_limit=64MB']
    if platform.postgresql_major >= 17:
        expected.append('transaction_timeout=10s')
    assert result.rows == [['0', setting] for setting in sorted(expected)]
