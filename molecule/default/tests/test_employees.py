"""The employees table: columns, keys, indexes, owner and the updated_at trigger."""

from __future__ import annotations

from typing import Callable

import pytest

from conftest import OWNER_ROLE, PsqlResult

# column: (data_type, length or precision,scale, nullable, default); None where not checked.
EXPECTED_COLUMNS = {
    'employee_id': ('integer', None, 'NO', 'nextval'),
    'first_name': ('character varying', '100', 'NO', None),
    'last_name': ('character varying', '100', 'NO', None),
    'department': ('character varying', '100', 'NO', None),
    'role': ('character varying', '100', 'NO', None),
    'employment_status': ('character varying', '50', 'NO', None),
    'hire_date': ('date', None, 'NO', None),
    'leave_type': ('character varying', '50', 'YES', None),
    'salary_local': ('numeric', '12,2', 'NO', None),
    'salary_usd': ('numeric', '12,2', 'NO', None),
    'manager_name': ('character varying', '200', 'YES', None),
    'created_at': ('timestamp without time zone', None, None, 'CURRENT_TIMESTAMP'),
    'updated_at': ('timestamp without time zone', None, None, 'CURRENT_TIMESTAMP'),
}

EXPECTED_INDEXES = {
    'idx_department': 'department',
    'idx_hire_date': 'hire_date',
    'idx_employment_status': 'employment_status',
    'idx_manager_name': 'manager_name',
}

COLUMNS_SQL = """
SELECT column_name,
       data_type,
       coalesce(character_maximum_length::text, numeric_precision || ',' || numeric_scale, ''),
       is_nullable,
       coalesce(column_default, '')
FROM information_schema.columns
WHERE table_schema = 'public'
  AND table_name = 'employees'
ORDER BY ordinal_position
"""


@pytest.fixture(scope='module')
def columns(superuser_sql: Callable[..., PsqlResult]) -> dict[str, list[str]]:
    return {row[0]: row[1:] for row in superuser_sql(COLUMNS_SQL).rows}


def test_employees_has_13_columns_in_order(columns: dict[str, list[str]]) -> None:
    assert list(columns) == list(EXPECTED_COLUMNS)


@pytest.mark.parametrize('column', list(EXPECTED_COLUMNS))
def test_column_type_and_nullability(columns: dict[str, list[str]], column: str) -> None:
    data_type, size, nullable, default = EXPECTED_COLUMNS[column]
    actual_type, actual_size, actual_nullable, actual_default = columns[column]
    assert actual_type == data_type
    if size is not None:
        assert actual_size == size
    if nullable is not None:
        assert actual_nullable == nullable
    if default is not None:
        assert actual_default.startswith(default), actual_default


def test_employee_id_is_a_serial_primary_key(superuser_sql: Callable[..., PsqlResult]) -> None:
    result = superuser_sql("""
        SELECT a.attname,
               pg_get_serial_sequence('public.employees', 'employee_id') IS NOT NULL
        FROM pg_index i
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
        WHERE i.indrelid = 'public.employees'::regclass
          AND i.indisprimary
    """)
    assert result.rows == [['employee_id', 't']]


def test_scenario_indexes_exist(superuser_sql: Callable[..., PsqlResult]) -> None:
    result = superuser_sql("""
        SELECT c.relname, a.attname
        FROM pg_index i
        JOIN pg_class c ON c.oid = i.indexrelid
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
        WHERE i.indrelid = 'public.employees'::regclass
          AND NOT i.indisprimary
    """)
    indexes = dict((name, column) for name, column in result.rows)
    for name, column in EXPECTED_INDEXES.items():
        assert indexes.get(name) == column, f'expected {name} on ({column}), found {indexes}'


def test_owner_role_owns_the_table(superuser_sql: Callable[..., PsqlResult]) -> None:
    owner = superuser_sql("SELECT tableowner FROM pg_tables WHERE tablename = 'employees'")
    assert owner.stdout.strip() == OWNER_ROLE


def test_update_moves_updated_at(superuser_sql: Callable[..., PsqlResult]) -> None:
    # The CTE reads the committed row, RETURNING the one the trigger wrote; rolled back so
    # the seeded data stay as the role left them.
    result = superuser_sql("""
        BEGIN;
        WITH before AS (
            SELECT employee_id, updated_at
            FROM employees
            ORDER BY employee_id
            LIMIT 1
        )
        UPDATE employees AS e
        SET first_name = e.first_name
        FROM before
        WHERE e.employee_id = before.employee_id
        RETURNING e.updated_at > before.updated_at;
        ROLLBACK;
    """)
    assert result.rows == [['t']], result.stdout
