"""library/postgres_hr_seed.py against a real, throwaway PostgreSQL server."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import threading
import time
import uuid
from typing import Any, Iterator

import pytest

from conftest import (REPO, ThrowawayCluster, free_port, run_module, scratch_database,
                      start_module)

OWNER = 'hr_owner'
LEDGER = 'postgres_hr_seed_ledger'
EMPLOYEES_DDL = '''
CREATE TABLE employees (employee_id SERIAL PRIMARY KEY, first_name VARCHAR(100) NOT NULL,
 last_name VARCHAR(100) NOT NULL, department VARCHAR(100) NOT NULL, role VARCHAR(100) NOT NULL,
 employment_status VARCHAR(50) NOT NULL, hire_date DATE NOT NULL, leave_type VARCHAR(50),
 salary_local DECIMAL(12,2) NOT NULL, salary_usd DECIMAL(12,2) NOT NULL,
 manager_name VARCHAR(200),
 created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP, updated_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP);
CREATE INDEX idx_department ON employees(department);
CREATE INDEX idx_hire_date ON employees(hire_date);
CREATE INDEX idx_employment_status ON employees(employment_status);
CREATE INDEX idx_manager_name ON employees(manager_name);
'''
SCENARIOS = [
    dict(name='recent_hires', predicate="hire_date >= CURRENT_DATE - INTERVAL '6 months'",
         minimum=5),
    dict(name='well_paid_engineers',
         predicate="department = 'Engineering' AND salary_usd > 120000", minimum=3),
    dict(name='parental_leave', predicate="leave_type = 'Parental Leave'", minimum=2),
    dict(name='john_doe_reports', predicate="manager_name = 'John Doe'", minimum=4),
]
DATA_COLUMNS = ('employee_id, first_name, last_name, department, role, employment_status, '
                'hire_date, leave_type, salary_local, salary_usd, manager_name')
FOREIGN_ROW = ("INSERT INTO employees (first_name, last_name, department, role, "
               "employment_status, hire_date, salary_local, salary_usd, manager_name) "
               "VALUES ('Imported', 'Person', 'Sales', 'Account Executive', 'Active', "
               "DATE '2015-06-01', 50000, 50000, 'John Doe') RETURNING employee_id")


# ---------------------------------------------------------------- helpers

def sql(cluster: ThrowawayCluster, db: str, query: str, args: Any = None) -> list[tuple]:
    """Run one statement in its own committed transaction and return its rows."""
    conn = cluster.connect(db)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(query, args)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def scalar(cluster: ThrowawayCluster, db: str, query: str, args: Any = None) -> Any:
    return sql(cluster, db, query, args)[0][0]


def create_employees_table(cluster: ThrowawayCluster, db: str) -> None:
    """The migration's table, owned by a NOLOGIN role as on a real host."""
    if not scalar(cluster, db, 'SELECT count(*) FROM pg_roles WHERE rolname = %s', (OWNER,)):
        sql(cluster, db, 'CREATE ROLE %s NOLOGIN' % OWNER)
    sql(cluster, db, 'GRANT CREATE ON SCHEMA public TO %s; SET ROLE %s; %s'
        % (OWNER, OWNER, EMPLOYEES_DDL))


def seed_args(cluster: ThrowawayCluster, db: str, **overrides: Any) -> dict[str, Any]:
    args = cluster.login_args(db, owner_role=OWNER, scenarios=SCENARIOS)
    args.update(overrides)
    return args


def rows_of(cluster: ThrowawayCluster, db: str) -> list[tuple]:
    return sql(cluster, db, 'SELECT %s FROM employees ORDER BY employee_id' % DATA_COLUMNS)


def scenario_counts(cluster: ThrowawayCluster, db: str) -> dict[str, int]:
    return {s['name']: scalar(cluster, db, 'SELECT count(*) FROM employees WHERE '
                              + s['predicate']) for s in SCENARIOS}


def assert_scenarios_hold(cluster: ThrowawayCluster, db: str) -> None:
    counts = scenario_counts(cluster, db)
    for scenario in SCENARIOS:
        assert counts[scenario['name']] >= scenario['minimum'], counts


def ledger_exists(cluster: ThrowawayCluster, db: str) -> bool:
    return scalar(cluster, db, 'SELECT to_regclass(%s) IS NOT NULL', (LEDGER,))


def indexes_of(cluster: ThrowawayCluster, db: str) -> dict[str, tuple[str, str | None]]:
    """Every index of the employees table: name -> (definition, comment)."""
    return {name: (definition, comment) for name, definition, comment in sql(cluster, db, '''
        SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid),
               obj_description(indexrelid, 'pg_class')
        FROM pg_index WHERE indrelid = 'employees'::regclass''')}


def fingerprint(cluster: ThrowawayCluster, db: str) -> tuple[int, str]:
    """Row count and a digest of every data column in id order, computed by the server."""
    return tuple(sql(cluster, db, "SELECT count(*), md5(string_agg(concat_ws('|', %s), ',' "
                 "ORDER BY employee_id)) FROM employees" % DATA_COLUMNS)[0])


def peak_memory_kib(pid: int) -> int:
    """The last VmHWM of a running process: its own peak, where wait4's ru_maxrss would also
    count pytest's memory, shared with the child between fork and exec."""
    peak = 0
    while True:
        try:
            status = pathlib.Path('/proc/%d/status' % pid).read_text()
        except OSError:
            return peak
        fields = [line.split()[1] for line in status.splitlines() if line.startswith('VmHWM:')]
        if not fields:
            return peak
        peak = max(peak, int(fields[0]))
        time.sleep(0.01)


def run_module_measured(args: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """The module's result and the peak resident memory of its process, in MiB."""
    proc = start_module('postgres_hr_seed', args)
    peak: list[int] = []
    follower = threading.Thread(target=lambda: peak.append(peak_memory_kib(proc.pid)))
    follower.start()
    output = proc.stdout.read()
    proc.wait()
    follower.join()
    return json.loads(output), peak[0] / 1024


@pytest.fixture
def table(pg_cluster: ThrowawayCluster, database: str) -> str:
    create_employees_table(pg_cluster, database)
    return database


@pytest.fixture
def second_table(pg_cluster: ThrowawayCluster) -> Iterator[str]:
    """Another database with the table, for comparing two seeds."""
    with scratch_database(pg_cluster) as name:
        create_employees_table(pg_cluster, name)
        yield name


# ---------------------------------------------------------------- seeding

def test_empty_table_is_seeded_with_realistic_rows(pg_cluster, table):
    result = run_module('postgres_hr_seed', seed_args(pg_cluster, table))

    assert not result.failed, result
    assert result['changed'] and result['inserted'] == 52
    assert scalar(pg_cluster, table, 'SELECT count(*) FROM employees') == 52
    departments = dict(sql(pg_cluster, table,
                           'SELECT department, count(*) FROM employees GROUP BY 1'))
    assert departments == result['by_department']
    for department, least in dict(Engineering=15, Marketing=10, Sales=10, HR=8,
                                  Finance=7).items():
        assert departments[department] >= least, departments
    statuses = dict(sql(pg_cluster, table,
                        'SELECT employment_status, count(*) FROM employees GROUP BY 1'))
    assert set(statuses) == {'Active', 'On Leave', 'Terminated'}
    assert statuses == result['by_status']
    assert all(s['ok'] for s in result['scenarios']), result['scenarios']
    assert_scenarios_hold(pg_cluster, table)
    assert 'recent_hires' in result['msg']


def test_seeded_rows_are_consistent(pg_cluster, table):
    run_module('postgres_hr_seed', seed_args(pg_cluster, table, rows=400))

    assert scalar(pg_cluster, table, '''SELECT count(*) FROM employees
        WHERE (employment_status = 'On Leave') <> (leave_type IS NOT NULL)''') == 0
    assert scalar(pg_cluster, table, '''SELECT count(*) FROM employees
        WHERE manager_name IS NOT NULL AND manager_name NOT IN (
            SELECT first_name || ' ' || last_name FROM employees)''') == 0
    assert scalar(pg_cluster, table, '''SELECT count(*) FROM employees
        WHERE hire_date > CURRENT_DATE OR hire_date < CURRENT_DATE - 730''') == 0
    assert scalar(pg_cluster, table, '''SELECT count(*) FROM employees
        WHERE first_name ILIKE '%test%' OR last_name ILIKE '%user%' ''') == 0
    assert scalar(pg_cluster, table, '''SELECT department FROM employees
        WHERE first_name = 'John' AND last_name = 'Doe' ''') == 'Engineering'
    # Each salary is local pay converted at one of a few fixed rates; rounding to cents moves
    # the ratio only in the fifth decimal.
    rates = {round(r[0], 3) for r in sql(pg_cluster, table,
                                         'SELECT salary_local / salary_usd FROM employees')}
    assert len(rates) <= 6, rates
    assert scalar(pg_cluster, table, 'SELECT count(DISTINCT role) FROM employees') >= 30


def test_ledger_records_the_seed_and_belongs_to_the_owner(pg_cluster, table):
    result = run_module('postgres_hr_seed', seed_args(pg_cluster, table))

    ledger = result['ledger']
    first, last = scalar(pg_cluster, table,
                         'SELECT ARRAY[min(employee_id), max(employee_id)] FROM employees')
    assert (ledger['first_employee_id'], ledger['last_employee_id']) == (first, last)
    assert ledger['row_count'] == 52 and ledger['random_seed'] == 42
    assert ledger['anchor_date'] == scalar(pg_cluster, table, 'SELECT CURRENT_DATE').isoformat()
    assert scalar(pg_cluster, table, "SELECT tableowner FROM pg_tables WHERE tablename = %s",
                  (LEDGER,)) == OWNER
    assert result['rows_per_second'] > 0


def test_rerun_on_a_seeded_table_changes_nothing(pg_cluster, table):
    run_module('postgres_hr_seed', seed_args(pg_cluster, table))
    before = rows_of(pg_cluster, table)

    result = run_module('postgres_hr_seed', seed_args(pg_cluster, table))

    assert not result.failed, result
    assert result['changed'] is False and result['inserted'] == 0
    assert result['reanchored'] is False
    assert 'already holds the module' in result['msg']
    assert rows_of(pg_cluster, table) == before


def test_same_seed_gives_identical_rows_in_two_databases(pg_cluster, table, second_table):
    for db in (table, second_table):
        assert run_module('postgres_hr_seed', seed_args(pg_cluster, db, rows=300))['changed']

    assert rows_of(pg_cluster, table) == rows_of(pg_cluster, second_table)


def test_different_seed_gives_different_rows(pg_cluster, table, second_table):
    run_module('postgres_hr_seed', seed_args(pg_cluster, table, random_seed=1))
    run_module('postgres_hr_seed', seed_args(pg_cluster, second_table, random_seed=2))

    assert rows_of(pg_cluster, table) != rows_of(pg_cluster, second_table)
    assert_scenarios_hold(pg_cluster, second_table)


def test_synthetic_rows_extend_the_curated_ones(pg_cluster, table, second_table):
    run_module('postgres_hr_seed', seed_args(pg_cluster, table))
    result = run_module('postgres_hr_seed', seed_args(pg_cluster, second_table, rows=1000))

    assert result['inserted'] == 1000
    assert rows_of(pg_cluster, second_table)[:52] == rows_of(pg_cluster, table)


def test_concurrent_seeders_insert_once(pg_cluster, table):
    procs = [start_module('postgres_hr_seed', seed_args(pg_cluster, table, rows=20000))
             for _ in range(2)]
    results = []
    for proc in procs:
        proc.wait(timeout=120)
        results.append(json.loads(proc.stdout.read()))

    assert sorted(r['changed'] for r in results) == [False, True], results
    assert scalar(pg_cluster, table, 'SELECT count(*) FROM employees') == 20000


# ---------------------------------------------------------------- bulk loading

BULK = 12_000  # above the module's threshold for building indexes after the load
SECONDARY = ['idx_department', 'idx_employment_status', 'idx_hire_date', 'idx_manager_name']


def test_large_seed_rebuilds_the_secondary_indexes_identically(pg_cluster, table):
    sql(pg_cluster, table, "COMMENT ON INDEX idx_hire_date IS 'Recent hires first'; SET ROLE "
        "%s; CREATE UNIQUE INDEX employees_badge ON employees (employee_id, last_name)" % OWNER)
    before = indexes_of(pg_cluster, table)

    result = run_module('postgres_hr_seed', seed_args(pg_cluster, table, rows=BULK))

    assert not result.failed, result
    assert result['inserted'] == BULK
    assert result['deferred_indexes'] == SECONDARY
    assert indexes_of(pg_cluster, table) == before
    assert before['idx_hire_date'][1] == 'Recent hires first'
    assert any(q.startswith('DROP INDEX') for q in result['queries'])
    assert result['rows_per_second'] > 0 and result['load_seconds'] > 0
    assert 'rows/s' in result['msg'] and '4 indexes built after the load' in result['msg']


def test_large_seed_is_loaded_frozen_and_analyzed(pg_cluster, table):
    result = run_module('postgres_hr_seed', seed_args(pg_cluster, table, rows=BULK))

    assert result['frozen'] is True
    assert any(q.startswith('COPY') and q.endswith('WITH (FREEZE)') for q in result['queries'])
    sql(pg_cluster, table, 'CREATE EXTENSION IF NOT EXISTS pg_visibility')
    all_frozen, pages = sql(pg_cluster, table, '''SELECT
        (SELECT all_frozen FROM pg_visibility_map_summary('employees')),
        (SELECT relpages FROM pg_class WHERE oid = 'employees'::regclass)''')[0]
    assert pages > 0 and all_frozen == pages
    assert scalar(pg_cluster, table, "SELECT count(*) FROM pg_stats "
                  "WHERE tablename = 'employees' AND attname = 'department'") == 1


def test_small_seed_keeps_its_indexes(pg_cluster, table):
    result = run_module('postgres_hr_seed', seed_args(pg_cluster, table, rows=BULK // 2))

    assert not result.failed, result
    assert result['deferred_indexes'] == [] and result['frozen'] is False
    assert not any(q.startswith('DROP INDEX') for q in result['queries'])
    assert result['rows_per_second'] > 0


def test_failure_in_the_middle_of_a_large_load_restores_every_index(pg_cluster, table):
    # The server rejects a row part-way through the COPY: a fact of the data, not of timing.
    sql(pg_cluster, table, 'ALTER TABLE employees ADD CONSTRAINT pay_cap '
        'CHECK (salary_usd < 200000)')
    before = indexes_of(pg_cluster, table)

    result = run_module('postgres_hr_seed', seed_args(pg_cluster, table, rows=BULK))

    assert result.failed
    assert 'pay_cap' in result['msg'] and 'rolled back' in result['msg']
    assert table in result['msg']
    assert scalar(pg_cluster, table, 'SELECT count(*) FROM employees') == 0
    assert indexes_of(pg_cluster, table) == before
    assert not ledger_exists(pg_cluster, table)


def test_failed_scenario_after_the_rebuild_restores_every_index(pg_cluster, table):
    before = indexes_of(pg_cluster, table)
    impossible = [dict(name='more_than_everyone', predicate='true', minimum=BULK + 1)]
    args = seed_args(pg_cluster, table, rows=BULK, scenarios=impossible)

    result = run_module('postgres_hr_seed', args)

    assert result.failed and 'more_than_everyone' in result['msg']
    assert any(q.startswith('CREATE INDEX') for q in result['queries'])
    assert scalar(pg_cluster, table, 'SELECT count(*) FROM employees') == 0
    assert indexes_of(pg_cluster, table) == before


def test_large_check_mode_preview_leaves_the_indexes_alone(pg_cluster, table):
    before = indexes_of(pg_cluster, table)

    result = run_module('postgres_hr_seed', seed_args(pg_cluster, table, rows=BULK),
                        check_mode=True)

    assert not result.failed, result
    assert result['changed'] and result['inserted'] == BULK
    assert result['deferred_indexes'] == []
    assert scalar(pg_cluster, table, 'SELECT count(*) FROM employees') == 0
    assert indexes_of(pg_cluster, table) == before


def test_table_referenced_by_a_foreign_key_is_loaded_without_freeze(pg_cluster, table):
    sql(pg_cluster, table, 'SET ROLE %s; CREATE TABLE reviews (employee_id INTEGER '
        'REFERENCES employees)' % OWNER)

    result = run_module('postgres_hr_seed', seed_args(pg_cluster, table, rows=BULK))

    assert not result.failed, result
    assert result['frozen'] is False and result['deferred_indexes'] == SECONDARY
    assert not any(q.startswith('TRUNCATE') for q in result['queries'])
    assert scalar(pg_cluster, table, 'SELECT count(*) FROM employees') == BULK


def test_role_that_does_not_own_the_table_loads_with_the_indexes_in_place(pg_cluster, table):
    loader = 'hr_loader_' + table[-6:]
    sql(pg_cluster, table, '''
        CREATE ROLE %(r)s LOGIN;
        GRANT CREATE ON SCHEMA public TO %(r)s;
        GRANT SELECT, INSERT, UPDATE ON employees TO %(r)s;
        GRANT USAGE ON SEQUENCE employees_employee_id_seq TO %(r)s''' % dict(r=loader))
    before = indexes_of(pg_cluster, table)
    try:
        result = run_module('postgres_hr_seed', seed_args(
            pg_cluster, table, rows=BULK, owner_role='', login_user=loader))

        assert not result.failed, result
        assert result['deferred_indexes'] == [] and result['frozen'] is False
        assert scalar(pg_cluster, table, 'SELECT count(*) FROM employees') == BULK
        assert indexes_of(pg_cluster, table) == before
    finally:
        sql(pg_cluster, table, 'DROP OWNED BY %s; DROP ROLE %s' % (loader, loader))


def test_same_seed_gives_identical_rows_at_ten_thousand(pg_cluster, table, second_table):
    for db in (table, second_table):
        assert run_module('postgres_hr_seed', seed_args(pg_cluster, db, rows=10_000))['changed']

    assert fingerprint(pg_cluster, table) == fingerprint(pg_cluster, second_table)
    assert fingerprint(pg_cluster, table)[0] == 10_000


def test_another_seed_gives_other_synthetic_rows_at_ten_thousand(pg_cluster, table,
                                                                 second_table):
    run_module('postgres_hr_seed', seed_args(pg_cluster, table, rows=10_000, random_seed=7))
    run_module('postgres_hr_seed', seed_args(pg_cluster, second_table, rows=10_000,
                                             random_seed=8))

    assert fingerprint(pg_cluster, table) != fingerprint(pg_cluster, second_table)
    assert_scenarios_hold(pg_cluster, second_table)


def test_memory_stays_flat_as_rows_grow(pg_cluster, table, second_table):
    _, small = run_module_measured(seed_args(pg_cluster, table, rows=20_000))
    result, large = run_module_measured(seed_args(pg_cluster, second_table, rows=300_000))

    assert result['inserted'] == 300_000
    # Fifteen times the rows; a module that held them would need well over 100 MiB more.
    assert 20 < small and large - small < 24, (small, large)


# ---------------------------------------------------------------- distributions at 20k rows

@pytest.fixture(scope='module')
def seeded_20k(pg_cluster: ThrowawayCluster) -> Iterator[tuple[ThrowawayCluster, str, dict]]:
    """One seed of 20000 rows, shared by the distribution tests, which only read it."""
    name = 'test_' + uuid.uuid4().hex[:12]
    conn = pg_cluster.connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute('CREATE DATABASE "%s"' % name)
    create_employees_table(pg_cluster, name)
    result = run_module('postgres_hr_seed', seed_args(pg_cluster, name, rows=20_000))
    assert not result.failed, result
    yield pg_cluster, name, result
    with conn.cursor() as cur:
        cur.execute('DROP DATABASE "%s" WITH (FORCE)' % name)
    conn.close()


def test_department_shares_follow_the_weights(seeded_20k):
    cluster, db, result = seeded_20k
    counts = dict(sql(cluster, db, 'SELECT department, count(*) FROM employees GROUP BY 1'))

    expected = dict(Engineering=0.35, Sales=0.25, Marketing=0.15, Finance=0.15, HR=0.10)
    assert set(counts) == set(expected)
    for department, share in expected.items():
        assert abs(counts[department] / 20000 - share) < 0.015, counts
    assert counts == result['by_department']


def test_statuses_and_leave_types_match(seeded_20k):
    cluster, db, result = seeded_20k
    statuses = dict(sql(cluster, db, 'SELECT employment_status, count(*) FROM employees '
                        'GROUP BY 1'))

    assert scalar(cluster, db, '''SELECT count(*) FROM employees
        WHERE (employment_status = 'On Leave') <> (leave_type IS NOT NULL)''') == 0
    assert {r[0] for r in sql(cluster, db, 'SELECT DISTINCT leave_type FROM employees '
                              'WHERE leave_type IS NOT NULL')} == {
        'Parental Leave', 'Medical Leave', 'Personal Leave', 'Sabbatical'}
    assert 0.80 < statuses['Active'] / 20000 < 0.90
    assert 0.07 < statuses['Terminated'] / 20000 < 0.13
    assert 0.03 < statuses['On Leave'] / 20000 < 0.07
    assert statuses == result['by_status']


def test_every_manager_is_an_employee_of_the_same_department(seeded_20k):
    cluster, db, _ = seeded_20k

    assert scalar(cluster, db, '''SELECT count(*) FROM employees AS e
        WHERE e.manager_name IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM employees AS m
            WHERE m.first_name || ' ' || m.last_name = e.manager_name
              AND m.department = e.department
              AND m.employment_status <> 'Terminated')''') == 0
    # Only the five heads of department have no manager.
    assert scalar(cluster, db, 'SELECT count(*) FROM employees WHERE manager_name IS NULL') == 5


def test_management_is_layered_with_a_sane_span(seeded_20k):
    cluster, db, _ = seeded_20k
    managers = scalar(cluster, db, '''SELECT count(*) FROM employees
        WHERE role ~ '(Manager|Director|Vice President|VP|Controller)'
          AND role NOT IN ('Product Marketing Manager', 'Social Media Manager')''')
    heads = dict(sql(cluster, db, '''SELECT manager_name, count(*) FROM employees
        WHERE manager_name IN ('John Doe', 'Olivia Bennett', 'Michael Brennan',
                               'Patricia Nguyen', 'Robert Chen') GROUP BY 1'''))

    # About one employee in eight manages others, and heads keep a handful of reports.
    assert 20000 / 12 < managers < 20000 / 6, managers
    assert all(3 <= count <= 25 for count in heads.values()), heads
    assert scalar(cluster, db, "SELECT count(*) FROM employees WHERE role IN "
                  "('Director of Engineering', 'Senior Engineering Manager')") > 0


def test_roles_salaries_and_hire_dates_are_realistic(seeded_20k):
    cluster, db, _ = seeded_20k
    roles = dict(sql(cluster, db, "SELECT role, count(*) FROM employees "
                     "WHERE department = 'Engineering' GROUP BY 1"))

    assert roles['Software Engineer'] > 5 * roles['Principal Engineer']
    rates = {r[0] for r in sql(
        cluster, db, 'SELECT DISTINCT round(salary_local / salary_usd, 2)::text FROM employees')}
    assert rates <= {'1.00', '1.36', '0.79', '0.92', '83.00', '5.00'}, rates
    assert scalar(cluster, db, 'SELECT count(*) FROM employees '
                  'WHERE salary_usd < 15000 OR salary_usd > 300000') == 0
    assert scalar(cluster, db, '''SELECT count(*) FROM employees
        WHERE hire_date > CURRENT_DATE OR hire_date < CURRENT_DATE - 730''') == 0
    # Synthetic hires start on weekdays; only the 52 curated rows may not.
    assert scalar(cluster, db, "SELECT count(*) FROM employees "
                  "WHERE extract(isodow FROM hire_date) > 5 AND employee_id > 52") == 0
    recent = scalar(cluster, db, "SELECT avg((hire_date >= CURRENT_DATE - 182)::int) "
                    "FROM employees WHERE employment_status = 'Active' AND employee_id > 52")
    assert 0.25 < recent < 0.45, recent


# ---------------------------------------------------------------- check mode and rollback

def test_check_mode_inserts_nothing(pg_cluster, table):
    result = run_module('postgres_hr_seed', seed_args(pg_cluster, table), check_mode=True,
                        diff=True)

    assert not result.failed, result
    assert result['changed'] and result['inserted'] == 52
    assert result['by_department']['Engineering'] >= 15
    assert sum(result['by_status'].values()) == 52
    assert all(s['ok'] for s in result['scenarios'])
    assert result['diff']['before'] == {} and result['diff']['after']['row_count'] == 52
    assert scalar(pg_cluster, table, 'SELECT count(*) FROM employees') == 0
    assert not ledger_exists(pg_cluster, table)
    assert scalar(pg_cluster, table, 'SELECT is_called FROM employees_employee_id_seq') is False


def test_failed_scenario_rolls_back_the_whole_seed(pg_cluster, table):
    impossible = SCENARIOS + [dict(name='everyone_named_doe', predicate="last_name = 'Doe'",
                                   minimum=50)]
    result = run_module('postgres_hr_seed', seed_args(pg_cluster, table, scenarios=impossible))

    assert result.failed
    assert 'everyone_named_doe' in result['msg'] and 'matched 1 rows' in result['msg']
    assert 'at least 50' in result['msg'] and 'rolled back' in result['msg']
    assert scalar(pg_cluster, table, 'SELECT count(*) FROM employees') == 0
    assert not ledger_exists(pg_cluster, table)


def test_killed_seed_leaves_no_rows_and_every_index(pg_cluster, table):
    indexes = indexes_of(pg_cluster, table)
    proc = start_module('postgres_hr_seed', seed_args(pg_cluster, table, rows=2_000_000))
    try:
        deadline = time.monotonic() + 60
        while not scalar(pg_cluster, table, '''SELECT count(*) FROM pg_stat_activity
                WHERE datname = %s AND query LIKE 'COPY%%' ''', (table,)):
            assert time.monotonic() < deadline, 'the seed never reached COPY'
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        proc.kill()
        proc.wait()

    deadline = time.monotonic() + 30
    while scalar(pg_cluster, table, "SELECT count(*) FROM pg_stat_activity "
                 "WHERE datname = %s AND application_name = 'postgres_hr'", (table,)):
        assert time.monotonic() < deadline, 'the killed seeder\'s backend lingers'
        time.sleep(0.1)
    assert scalar(pg_cluster, table, 'SELECT count(*) FROM employees') == 0
    assert not ledger_exists(pg_cluster, table)
    # The kill came after the secondary indexes were dropped; the rollback brought them back.
    assert indexes_of(pg_cluster, table) == indexes


# ---------------------------------------------------------------- rows the module did not insert

def test_table_with_foreign_rows_is_left_untouched(pg_cluster, table):
    sql(pg_cluster, table, FOREIGN_ROW)
    before = sql(pg_cluster, table, 'SELECT * FROM employees')

    result = run_module('postgres_hr_seed', seed_args(pg_cluster, table))

    assert not result.failed, result
    assert result['changed'] is False and result['inserted'] == 0
    assert 'did not insert' in result['msg'] and 'left alone' in result['msg']
    assert sql(pg_cluster, table, 'SELECT * FROM employees') == before
    assert not ledger_exists(pg_cluster, table)
    # ansible-core 2.19 returns warnings as structured events; their text is what matters.
    assert 'recent_hires' in json.dumps(result.get('warnings'))


def simulate_a_year_passing(cluster: ThrowawayCluster, db: str, days: int = 400) -> None:
    """Move the module's rows and its anchor back, as if they were seeded `days` ago."""
    sql(cluster, db, '''UPDATE employees SET hire_date = hire_date - %(days)s
        WHERE employee_id BETWEEN (SELECT first_employee_id FROM postgres_hr_seed_ledger)
                              AND (SELECT last_employee_id FROM postgres_hr_seed_ledger);
        UPDATE postgres_hr_seed_ledger SET anchor_date = anchor_date - %(days)s''',
        dict(days=days))


def test_reanchor_restores_the_scenarios_and_spares_foreign_rows(pg_cluster, table):
    run_module('postgres_hr_seed', seed_args(pg_cluster, table))
    seeded = rows_of(pg_cluster, table)
    foreign_id = scalar(pg_cluster, table, FOREIGN_ROW)
    foreign = sql(pg_cluster, table, 'SELECT * FROM employees WHERE employee_id = %s',
                  (foreign_id,))
    simulate_a_year_passing(pg_cluster, table)
    assert scenario_counts(pg_cluster, table)['recent_hires'] == 0

    result = run_module('postgres_hr_seed', seed_args(pg_cluster, table), diff=True)

    assert not result.failed, result
    assert result['changed'] and result['reanchored']
    assert result['shifted_days'] == 400 and result['shifted_rows'] == 52
    assert result['inserted'] == 0
    assert result['ledger']['shifted_days_total'] == 400
    assert result['diff']['before']['anchor_date'] != result['diff']['after']['anchor_date']
    assert_scenarios_hold(pg_cluster, table)
    assert rows_of(pg_cluster, table)[:52] == seeded
    assert sql(pg_cluster, table, 'SELECT * FROM employees WHERE employee_id = %s',
               (foreign_id,)) == foreign

    again = run_module('postgres_hr_seed', seed_args(pg_cluster, table))
    assert again['changed'] is False and again['reanchored'] is False


def test_recent_anchor_is_not_moved(pg_cluster, table):
    run_module('postgres_hr_seed', seed_args(pg_cluster, table))
    simulate_a_year_passing(pg_cluster, table, days=20)
    before = rows_of(pg_cluster, table)

    result = run_module('postgres_hr_seed', seed_args(pg_cluster, table))

    assert result['changed'] is False and result['reanchored'] is False
    assert rows_of(pg_cluster, table) == before


def test_reanchor_in_check_mode_changes_nothing(pg_cluster, table):
    run_module('postgres_hr_seed', seed_args(pg_cluster, table))
    simulate_a_year_passing(pg_cluster, table)
    before = rows_of(pg_cluster, table)
    anchor = scalar(pg_cluster, table, 'SELECT anchor_date FROM postgres_hr_seed_ledger')

    result = run_module('postgres_hr_seed', seed_args(pg_cluster, table), check_mode=True)

    assert result['changed'] and result['reanchored'] and result['shifted_days'] == 400
    assert all(s['ok'] for s in result['scenarios'])
    assert rows_of(pg_cluster, table) == before
    assert scalar(pg_cluster, table, 'SELECT anchor_date FROM postgres_hr_seed_ledger') == anchor


def test_emptied_table_is_seeded_again_and_the_old_entry_retired(pg_cluster, table):
    run_module('postgres_hr_seed', seed_args(pg_cluster, table))
    sql(pg_cluster, table, 'DELETE FROM employees')

    result = run_module('postgres_hr_seed', seed_args(pg_cluster, table))

    assert result['changed'] and result['ledger']['first_employee_id'] == 53
    assert scalar(pg_cluster, table, 'SELECT count(*) FROM postgres_hr_seed_ledger '
                  'WHERE superseded_at IS NULL') == 1


# ---------------------------------------------------------------- arguments and connection

@pytest.mark.parametrize('overrides, expected', [
    (dict(table='Employees'), 'table must be a lowercase identifier'),
    (dict(schema='public; DROP'), 'schema must be a lowercase identifier'),
    (dict(owner_role='hr-owner'), 'owner_role must be a lowercase identifier'),
    (dict(rows=10), 'rows must be between 52'),
    (dict(reanchor_after_days=-1), 'reanchor_after_days must be 0 or more'),
    (dict(scenarios=[dict(name='x', predicate='true', minimum=-1)]), 'minimum must be 0'),
    (dict(scenarios=[dict(name='x', predicate='true; DELETE FROM employees', minimum=1)]),
     'without ";"'),
    (dict(scenarios=[dict(name='x', predicate='true', minimum=1, limit=3)]), 'limit'),
    (dict(scenarios=[dict(name='x', predicate='true')]), 'minimum'),
])
def test_bad_arguments_fail_before_connecting(overrides, expected):
    # Nothing listens here and retries would take 20 s: a quick failure proves no connection.
    args = dict(login_host='127.0.0.1', login_port=free_port(), db='hr', connect_retries=5,
                connect_retry_delay=5.0)
    args.update(overrides)
    began = time.monotonic()

    result = run_module('postgres_hr_seed', args)

    assert result.failed and expected in result['msg'], result
    assert time.monotonic() - began < 10


def test_server_that_never_comes_up_fails_after_the_configured_attempts():
    port = free_port()
    args = dict(login_host='127.0.0.1', login_port=port, db='hr_app', connect_retries=3,
                connect_retry_delay=0.5, login_password='s3cret-never-shown')
    began = time.monotonic()

    result = run_module('postgres_hr_seed', args)

    assert result.failed
    assert 'after 3 attempts' in result['msg']
    assert '127.0.0.1' in result['msg'] and 'port %d' % port in result['msg']
    assert 'database "hr_app"' in result['msg']
    assert 's3cret-never-shown' not in json.dumps(result)
    assert time.monotonic() - began >= 1.0, 'three attempts mean two pauses of 0.5 s'


def test_missing_table_is_reported(pg_cluster, database):
    result = run_module('postgres_hr_seed', pg_cluster.login_args(database))

    assert result.failed
    assert 'public.employees does not exist' in result['msg'] and database in result['msg']


def test_documentation_renders():
    ansible_doc = pathlib.Path(sys.executable).parent / 'ansible-doc'
    proc = subprocess.run([str(ansible_doc), 'postgres_hr_seed'], cwd=REPO,
                          capture_output=True, text=True, timeout=120)

    assert proc.returncode == 0, proc.stderr
    for word in ('reanchor_after_days', 'scenarios', 'RETURN VALUES', 'check_mode'):
        assert word in proc.stdout, word
