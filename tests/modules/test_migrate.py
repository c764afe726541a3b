"""library/postgres_hr_migrate.py against a real server: every result is checked in the database."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from typing import Any, Iterator

import pytest

from conftest import ThrowawayCluster, run_module, start_module

MODULE = 'postgres_hr_migrate'
HISTORY = 'postgres_hr_schema_history'

CREATE_EMPLOYEES = """-- Create the employees table.
CREATE TABLE employees (
    id INTEGER PRIMARY KEY,
    full_name TEXT NOT NULL
);
"""
ADD_SALARY = """-- Add the salary column.
ALTER TABLE employees
    ADD COLUMN salary_usd NUMERIC(10, 2);
"""
ADD_INDEX = """-- Index employees by name.
CREATE INDEX employees_full_name_idx
    ON employees (full_name);
"""


def migration(version: int, name: str, sql: str) -> dict[str, Any]:
    return dict(version=version, name=name, sql=sql,
                source='templates/migrations/%03d_%s.sql.j2' % (version, name))


def first_two() -> list[dict[str, Any]]:
    return [migration(1, 'create_employees', CREATE_EMPLOYEES),
            migration(2, 'add_salary', ADD_SALARY)]


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode('utf-8')).hexdigest()


def query(cluster: ThrowawayCluster, db: str, sql: str, args: tuple = ()) -> list[tuple]:
    conn = cluster.connect(db)
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()
    finally:
        conn.close()


def execute(cluster: ThrowawayCluster, db: str, sql: str) -> None:
    conn = cluster.connect(db)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def history(cluster: ThrowawayCluster, db: str, schema: str = 'public') -> list[tuple]:
    return query(cluster, db, 'SELECT version, name, checksum, applied_by, execution_ms '
                              'FROM %s.%s ORDER BY version' % (schema, HISTORY))


def table_exists(cluster: ThrowawayCluster, db: str, name: str) -> bool:
    return query(cluster, db, 'SELECT to_regclass(%s) IS NOT NULL', (name,))[0][0]


def columns(cluster: ThrowawayCluster, db: str, table: str) -> list[str]:
    return [row[0] for row in query(
        cluster, db, "SELECT column_name FROM information_schema.columns "
                     "WHERE table_name = %s ORDER BY ordinal_position", (table,))]


def owner_of(cluster: ThrowawayCluster, db: str, relation: str) -> str:
    return query(cluster, db, 'SELECT pg_get_userbyid(relowner) FROM pg_class '
                              'WHERE oid = to_regclass(%s)', (relation,))[0][0]


def migrate(cluster: ThrowawayCluster, db: str, migrations: list[dict[str, Any]],
            check_mode: bool = False, diff: bool = False, **options: Any) -> dict[str, Any]:
    args = dict(cluster.login_args(db), migrations=migrations, **options)
    return run_module(MODULE, args, check_mode=check_mode, diff=diff)


def applied_first_two(cluster: ThrowawayCluster, db: str) -> None:
    result = migrate(cluster, db, first_two())
    assert not result.failed, result['msg']


@pytest.fixture
def owner_role(pg_cluster: ThrowawayCluster, database: str) -> Iterator[str]:
    """A NOLOGIN role that owns the test database, so it may create in its public schema."""
    name = 'owner_' + database
    execute(pg_cluster, 'postgres', 'CREATE ROLE %s NOLOGIN' % name)
    execute(pg_cluster, 'postgres', 'ALTER DATABASE %s OWNER TO %s' % (database, name))
    yield name
    execute(pg_cluster, database, 'DROP OWNED BY %s CASCADE' % name)
    execute(pg_cluster, 'postgres', 'ALTER DATABASE %s OWNER TO postgres' % database)
    execute(pg_cluster, 'postgres', 'DROP ROLE %s' % name)


def test_fresh_database_gets_both_migrations_and_their_history(pg_cluster, database):
    result = migrate(pg_cluster, database, first_two())

    assert not result.failed, result['msg']
    assert result['changed'] is True
    assert [m['version'] for m in result['applied']] == [1, 2]
    assert result['applied'][1] == dict(version=2, name='add_salary', checksum=sha256(ADD_SALARY))
    assert result['pending'] == []
    assert columns(pg_cluster, database, 'employees') == ['id', 'full_name', 'salary_usd']
    rows = history(pg_cluster, database)
    assert [row[:4] for row in rows] == [
        (1, 'create_employees', sha256(CREATE_EMPLOYEES), 'postgres'),
        (2, 'add_salary', sha256(ADD_SALARY), 'postgres')]
    assert all(row[4] >= 0 for row in rows)
    assert [h['version'] for h in result['history']] == [1, 2]
    assert 'T' in result['history'][0]['applied_at']
    assert owner_of(pg_cluster, database, 'employees') == 'postgres'


def test_owner_role_owns_created_objects_and_history(pg_cluster, database, owner_role):
    result = migrate(pg_cluster, database, first_two(), owner_role=owner_role)

    assert not result.failed, result['msg']
    assert owner_of(pg_cluster, database, 'employees') == owner_role
    assert owner_of(pg_cluster, database, HISTORY) == owner_role
    # SET ROLE changes current_user only; the history keeps the real login.
    assert {row[3] for row in history(pg_cluster, database)} == {'postgres'}


def test_owner_role_in_a_new_schema_owns_the_schema(pg_cluster, database, owner_role):
    result = migrate(pg_cluster, database, first_two(), schema='hr', owner_role=owner_role)

    assert not result.failed, result['msg']
    assert query(pg_cluster, database, "SELECT pg_get_userbyid(nspowner) FROM pg_namespace "
                                       "WHERE nspname = 'hr'") == [(owner_role,)]
    assert owner_of(pg_cluster, database, 'hr.employees') == owner_role
    assert not table_exists(pg_cluster, database, 'public.employees')
    assert [row[0] for row in history(pg_cluster, database, 'hr')] == [1, 2]


def test_missing_owner_role_fails_before_anything_is_created(pg_cluster, database):
    result = migrate(pg_cluster, database, first_two(), owner_role='no_such_owner')

    assert result.failed
    assert 'owner_role "no_such_owner" does not exist' in result['msg']
    assert not table_exists(pg_cluster, database, HISTORY)


def test_rerun_changes_nothing(pg_cluster, database):
    applied_first_two(pg_cluster, database)
    before = query(pg_cluster, database, 'SELECT * FROM %s ORDER BY version' % HISTORY)

    result = migrate(pg_cluster, database, first_two())

    assert not result.failed, result['msg']
    assert result['changed'] is False
    assert result['applied'] == [] and result['pending'] == []
    assert query(pg_cluster, database, 'SELECT * FROM %s ORDER BY version' % HISTORY) == before


def test_check_mode_lists_pending_and_changes_nothing(pg_cluster, database):
    result = migrate(pg_cluster, database, first_two(), check_mode=True)

    assert not result.failed, result['msg']
    assert result['changed'] is True
    assert [m['version'] for m in result['pending']] == [1, 2]
    assert result['applied'] == [] and result['history'] == []
    assert not table_exists(pg_cluster, database, HISTORY)
    assert not table_exists(pg_cluster, database, 'employees')


def test_check_mode_after_apply_lists_only_the_new_version(pg_cluster, database):
    applied_first_two(pg_cluster, database)

    result = migrate(pg_cluster, database, first_two() + [migration(3, 'add_index', ADD_INDEX)],
                     check_mode=True)

    assert result['changed'] is True
    assert result['pending'] == [dict(version=3, name='add_index', checksum=sha256(ADD_INDEX))]
    assert [row[0] for row in history(pg_cluster, database)] == [1, 2]
    assert not table_exists(pg_cluster, database, 'employees_full_name_idx')


def test_diff_shows_pending_sql_under_a_header_per_version(pg_cluster, database):
    result = migrate(pg_cluster, database, first_two(), check_mode=True, diff=True)

    diff = result['diff']
    assert diff['before'] == ''
    assert '-- version 1 "create_employees" (templates/migrations/001_create_employees.sql.j2)\n' \
        + CREATE_EMPLOYEES in diff['after']
    assert '-- version 2 "add_salary" (templates/migrations/002_add_salary.sql.j2)\n' \
        + ADD_SALARY in diff['after']
    assert diff['after'].index('version 1') < diff['after'].index('version 2')

    rerun_diff = migrate(pg_cluster, database, first_two(), diff=True)['diff']
    assert rerun_diff['after'] == diff['after'], 'a real run shows what it applied'
    assert migrate(pg_cluster, database, first_two(), diff=True)['diff']['after'] == ''


def test_new_third_version_is_applied_alone(pg_cluster, database):
    applied_first_two(pg_cluster, database)
    first_rows = history(pg_cluster, database)

    result = migrate(pg_cluster, database, first_two() + [migration(3, 'add_index', ADD_INDEX)])

    assert not result.failed, result['msg']
    assert result['changed'] is True
    assert result['applied'] == [dict(version=3, name='add_index', checksum=sha256(ADD_INDEX))]
    assert table_exists(pg_cluster, database, 'employees_full_name_idx')
    assert history(pg_cluster, database)[:2] == first_rows
    assert [row[0] for row in history(pg_cluster, database)] == [1, 2, 3]


def test_migrations_given_out_of_order_are_applied_by_version(pg_cluster, database):
    result = migrate(pg_cluster, database, list(reversed(first_two())))

    assert not result.failed, result['msg']
    assert [m['version'] for m in result['applied']] == [1, 2]


def test_edited_applied_migration_fails_and_changes_nothing(pg_cluster, database):
    applied_first_two(pg_cluster, database)
    before = history(pg_cluster, database)
    edited = first_two()
    edited[1]['sql'] = ADD_SALARY.replace('NUMERIC(10, 2)', 'NUMERIC(12, 2)')

    result = migrate(pg_cluster, database, edited + [migration(3, 'add_index', ADD_INDEX)])

    assert result.failed
    assert 'templates/migrations/002_add_salary.sql.j2' in result['msg']
    assert sha256(ADD_SALARY) in result['msg'] and sha256(edited[1]['sql']) in result['msg']
    assert 'must not be edited' in result['msg'] and 'new version' in result['msg']
    assert history(pg_cluster, database) == before
    assert not table_exists(pg_cluster, database, 'employees_full_name_idx')
    assert query(pg_cluster, database, "SELECT numeric_precision FROM information_schema.columns "
                                       "WHERE column_name = 'salary_usd'") == [(10,)]


def test_applied_version_missing_from_migrations_fails(pg_cluster, database):
    applied_first_two(pg_cluster, database)
    before = history(pg_cluster, database)

    result = migrate(pg_cluster, database, [first_two()[0], migration(3, 'add_index', ADD_INDEX)])

    assert result.failed
    assert 'Version 2 "add_salary"' in result['msg'] and 'not among the migrations' in result['msg']
    assert history(pg_cluster, database) == before
    assert not table_exists(pg_cluster, database, 'employees_full_name_idx')


def test_pending_version_below_an_applied_one_fails(pg_cluster, database):
    migrate(pg_cluster, database, [first_two()[0], migration(3, 'add_index', ADD_INDEX)])

    result = migrate(pg_cluster, database, first_two() + [migration(3, 'add_index', ADD_INDEX)])

    assert result.failed
    assert 'version 2 "add_salary"' in result['msg'] and 'above 3' in result['msg']
    assert [row[0] for row in history(pg_cluster, database)] == [1, 3]
    assert 'salary_usd' not in columns(pg_cluster, database, 'employees')


def test_failing_migration_rolls_back_alone_and_keeps_earlier_ones(pg_cluster, database):
    # Version 3 creates a table before it fails: the table must vanish with the rollback.
    broken = migration(3, 'broken', 'CREATE TABLE half_done (id INTEGER);\n'
                                    'ALTER TABLE no_such_table ADD COLUMN x INTEGER;\n')
    later = migration(4, 'after_broken', 'CREATE TABLE never_reached (id INTEGER);\n')

    result = migrate(pg_cluster, database, first_two() + [broken, later])

    assert result.failed
    assert 'version 3 "broken" (templates/migrations/003_broken.sql.j2)' in result['msg']
    assert 'relation "no_such_table" does not exist' in result['msg']
    assert 'Versions 1, 2' in result['msg']
    assert result['changed'] is True
    assert [m['version'] for m in result['applied']] == [1, 2]
    assert [m['version'] for m in result['pending']] == [3, 4]
    assert [row[0] for row in history(pg_cluster, database)] == [1, 2]
    assert table_exists(pg_cluster, database, 'employees')
    assert not table_exists(pg_cluster, database, 'half_done')
    assert not table_exists(pg_cluster, database, 'never_reached')

    fixed = dict(broken, sql='CREATE TABLE half_done (id INTEGER);\n')
    rerun = migrate(pg_cluster, database, first_two() + [fixed, later])
    assert not rerun.failed, rerun['msg']
    assert [m['version'] for m in rerun['applied']] == [3, 4]


def finish(proc: subprocess.Popen, timeout: float = 60) -> dict[str, Any]:
    # start_module already closed stdin, which communicate() would try to flush.
    proc.wait(timeout=timeout)
    stdout, stderr = proc.stdout.read(), proc.stderr.read()
    try:
        return json.loads(stdout)
    except json.JSONDecodeError:
        raise AssertionError('module printed no JSON\nstdout: %s\nstderr: %s' % (stdout, stderr))


def wait_for_sleeping_migration(cluster: ThrowawayCluster, db: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if query(cluster, 'postgres', "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                                      "AND query LIKE %s", (db, '%pg_sleep%'))[0][0]:
            return
        time.sleep(0.1)
    raise AssertionError('the slow migration never started')


def slow_migrations(seconds: float) -> list[dict[str, Any]]:
    slow = migration(1, 'create_employees', 'SELECT pg_sleep(%s);\n%s' % (seconds,
                                                                          CREATE_EMPLOYEES))
    return [slow, migration(2, 'add_salary', ADD_SALARY)]


def test_concurrent_migrators_apply_once(pg_cluster, database):
    args = dict(pg_cluster.login_args(database), migrations=slow_migrations(2))

    procs = [start_module(MODULE, args), start_module(MODULE, args)]
    results = [finish(proc) for proc in procs]

    assert not any(r.get('failed') for r in results), [r['msg'] for r in results]
    applied = sorted(len(r['applied']) for r in results)
    assert applied == [0, 2], 'exactly one migrator applies both versions'
    idle = next(r for r in results if not r['applied'])
    assert idle['changed'] is False and idle['pending'] == []
    assert [h['version'] for h in idle['history']] == [1, 2]
    assert [row[0] for row in history(pg_cluster, database)] == [1, 2]


def test_lock_held_longer_than_lock_timeout_fails_clearly(pg_cluster, database):
    args = dict(pg_cluster.login_args(database), migrations=slow_migrations(4))
    holder = start_module(MODULE, args)
    try:
        wait_for_sleeping_migration(pg_cluster, database)
        began = time.monotonic()
        result = migrate(pg_cluster, database, slow_migrations(4), lock_timeout=1)
        waited = time.monotonic() - began
    finally:
        holder_result = finish(holder)

    assert result.failed
    assert 'Another migrator holds the migration lock' in result['msg']
    assert 'after 1 s' in result['msg'] and 'database "%s"' % database in result['msg']
    assert 1 <= waited < 4, 'gave up at the timeout, not when the holder finished'
    assert not holder_result.get('failed'), holder_result['msg']
    assert [row[0] for row in history(pg_cluster, database)] == [1, 2]


@pytest.mark.parametrize('migrations, options, expected', [
    ([migration(1, 'a', 'SELECT 1;'), migration(1, 'b', 'SELECT 2;')], {},
     'version 1 is also used by'),
    ([migration(0, 'zero', 'SELECT 1;')], {}, 'version must be 1 or more, got 0'),
    ([migration(1, 'blank', '  \n')], {}, 'sql is empty'),
    (first_two(), dict(schema='HR'), 'schema must be a lowercase identifier'),
    (first_two(), dict(history_table='history; DROP TABLE x'), 'history_table must be'),
    (first_two(), dict(owner_role='1owner'), 'owner_role must be'),
    (first_two(), dict(lock_timeout=0), 'lock_timeout must be at least 1'),
])
def test_invalid_arguments_fail_before_connecting(pg_cluster, migrations, options, expected):
    # Port 1 has no server: reaching it would fail with a connection error, not this one.
    args = dict(pg_cluster.login_args('never_created', login_port=1), migrations=migrations,
                connect_retries=1, **options)

    result = run_module(MODULE, args)

    assert result.failed
    assert expected in result['msg']
    assert 'Cannot connect' not in result['msg']
