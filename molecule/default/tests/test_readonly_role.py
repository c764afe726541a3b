"""The application's login role reads employees over TCP with its vault password, and nothing
else: writes fail with insufficient_privilege (SQLSTATE 42501), it holds no attribute beyond
LOGIN and owns nothing."""

from __future__ import annotations

from typing import Callable

import pytest

from conftest import (HISTORY_TABLE, READONLY_ROLE, Platform, PsqlResult,
                      run_readonly_psql)

INSUFFICIENT_PRIVILEGE = '42501'

WRITES = {
    'insert': """
        INSERT INTO employees (first_name, last_name, department, role, employment_status,
                               hire_date, salary_local, salary_usd)
        VALUES ('Probe', 'Probe', 'QA', 'Probe', 'Active', CURRENT_DATE, 1, 1)
    """,
    'update': "UPDATE employees SET first_name = first_name",
    'delete': "DELETE FROM employees",
    'truncate': "TRUNCATE employees",
    'create_table': "CREATE TABLE readonly_probe (id integer)",
}


def test_select_works(readonly_sql: Callable[..., PsqlResult]) -> None:
    result = readonly_sql('SELECT count(*) FROM employees')
    assert result.rc == 0, result.stderr
    assert int(result.stdout.strip()) > 0


@pytest.mark.parametrize('statement', list(WRITES))
def test_write_is_denied(readonly_sql: Callable[..., PsqlResult], statement: str) -> None:
    # The role may also make its sessions read-only by default (SQLSTATE 25006); a READ WRITE
    # transaction gets past that setting, which the role itself could change, so what is
    # tested is the grants. Rolled back, so a grant too many changes nothing here.
    result = readonly_sql(f'BEGIN READ WRITE; {WRITES[statement]}; ROLLBACK;')
    assert result.rc != 0, f'{statement} succeeded as {READONLY_ROLE}'
    assert result.sqlstate == INSUFFICIENT_PRIVILEGE, result.stderr


def test_other_tables_are_not_readable(readonly_sql: Callable[..., PsqlResult]) -> None:
    result = readonly_sql(f'SELECT count(*) FROM {HISTORY_TABLE}')
    assert result.sqlstate == INSUFFICIENT_PRIVILEGE, result.stdout + result.stderr


def test_wrong_password_is_refused(platform: Platform, readonly_password: str) -> None:
    result = run_readonly_psql(platform.name, readonly_password + 'x', 'SELECT 1')
    assert result.rc != 0
    assert 'password authentication failed' in result.stderr, result.stderr


def test_role_has_no_elevated_attributes(superuser_sql: Callable[..., PsqlResult]) -> None:
    result = superuser_sql(f"""
        SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls
        FROM pg_roles
        WHERE rolname = '{READONLY_ROLE}'
    """)
    assert result.rows == [['t', 'f', 'f', 'f', 'f', 'f']], result.stdout


def test_role_owns_nothing_and_belongs_to_no_role(
        superuser_sql: Callable[..., PsqlResult]) -> None:
    # pg_shdepend records ownership ('o') of objects in every database of the cluster.
    result = superuser_sql(f"""
        SELECT
            (SELECT count(*)
             FROM pg_shdepend
             WHERE refclassid = 'pg_authid'::regclass
               AND refobjid = r.oid
               AND deptype = 'o'),
            (SELECT count(*) FROM pg_auth_members WHERE member = r.oid)
        FROM pg_roles AS r
        WHERE r.rolname = '{READONLY_ROLE}'
    """)
    assert result.rows == [['0', '0']], 'expected (objects owned, roles joined) = (0, 0)'


def test_only_select_on_employees_is_granted(superuser_sql: Callable[..., PsqlResult]) -> None:
    result = superuser_sql(f"""
        SELECT table_name, privilege_type
        FROM information_schema.role_table_grants
        WHERE grantee = '{READONLY_ROLE}'
    """)
    assert result.rows == [['employees', 'SELECT']]
