"""End-to-end: `ansible-playbook site.yml` against this machine, as `make site` runs it.

The run targets a cluster of its own (name `hr_e2e`, a free port) next to whatever else the
machine has, with a vault password and vault file generated for this test run, and drops the
cluster afterwards. Nothing here stands in for PostgreSQL or Ansible.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
from typing import Any, Iterator

import psycopg2
import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
CLUSTER = 'hr_e2e'
READONLY_ROLE = 'query_app_readonly'
PROBE_SUITE = REPO / 'tests' / 'probes' / 'hostile_sql.py'
# The probe files are plain modules, shared with molecule's verify step.
sys.path.insert(0, str(PROBE_SUITE.parent))
import hostile_sql  # noqa: E402
from drift_tampering import DRIFT_LABELS, tampering  # noqa: E402
SCENARIOS = ('recent_hires', 'engineering_high_earners', 'parental_leave', 'managed_by_john_doe')
RECAP = re.compile(r'^localhost\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)',
                   re.MULTILINE)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='provisions this machine: needs root')


PROBES = hostile_sql.PROBES
ROLE_DEFAULTS = yaml.safe_load((REPO / 'roles' / 'postgres_hr' / 'defaults' / 'main.yml')
                               .read_text())
ROLE_VARS = yaml.safe_load((REPO / 'roles' / 'postgres_hr' / 'vars' / 'main.yml').read_text())


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def vault_password(run: 'SiteRun') -> str:
    out = subprocess.run([shutil.which('ansible-vault'), 'view', '--vault-password-file',
                          str(run.vault_pass), str(run.vault_vars)],
                         check=True, capture_output=True, text=True).stdout
    return re.search(r'^vault_postgres_hr_readonly_password: "?([^"\n]+)"?$', out,
                     re.MULTILINE).group(1)


class SiteRun:
    """A private inventory for localhost, its vault, and a helper to run the site playbook."""

    def __init__(self, root: pathlib.Path, port: int) -> None:
        self.root = root
        self.port = port
        self.inventory = root / 'inventory'
        self.vault_pass = root / 'vault_pass'
        self.vault_vars = self.inventory / 'group_vars' / 'all' / 'vault.yml'
        (self.inventory / 'group_vars' / 'all').mkdir(parents=True)
        shutil.copy(REPO / 'inventories' / 'local' / 'hosts.yml', self.inventory / 'hosts.yml')
        (self.inventory / 'group_vars' / 'all' / 'main.yml').write_text(
            'postgres_hr_cluster_name: %s\npostgres_hr_port: %d\n' % (CLUSTER, port))
        subprocess.run([str(REPO / 'scripts' / 'bootstrap-vault'), str(self.vault_pass),
                        str(self.vault_vars)], check=True, capture_output=True)
        self.major = None

    def playbook(self, *extra: str, playbook: str = 'site.yml') -> subprocess.CompletedProcess:
        env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
                   ANSIBLE_FORCE_COLOR='0')
        return subprocess.run(
            ['ansible-playbook', playbook, '-i', str(self.inventory / 'hosts.yml'),
             '--vault-id', 'e2e@%s' % self.vault_pass, *extra],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=900)

    def superuser_sql(self, query: str, dbname: str = 'hr_db') -> list[tuple[str, ...]]:
        """Rows of a query run as the postgres superuser, which logs in by peer only."""
        out = subprocess.run(
            ['runuser', '-u', 'postgres', '--', 'psql', '-X', '-q', '-A', '-t', '-F', '\t',
             '-v', 'ON_ERROR_STOP=1', '-p', str(self.port), '-d', dbname, '-c', query],
            check=True, capture_output=True, text=True).stdout
        return [tuple(line.split('\t')) for line in out.splitlines() if line]

    def connect(self, user: str, password: str, dbname: str = 'hr_db'):
        return psycopg2.connect(dbname=dbname, user=user, password=password,
                                host='127.0.0.1', port=self.port)

    def cluster_info(self) -> dict[str, Any]:
        out = subprocess.run(['pg_lsclusters', '--json'], check=True, capture_output=True,
                             text=True).stdout
        return next(c for c in json.loads(out) if c['cluster'] == CLUSTER)

    def probe(self, password: str, *names: str) -> dict[str, Any]:
        """The hostile-SQL suite's report; the password travels in the environment only."""
        selected = [arg for name in names for arg in ('--probe', name)]
        result = subprocess.run(
            [sys.executable, str(PROBE_SUITE), '--host', '127.0.0.1', '--port', str(self.port),
             '--dbname', 'hr_db', '--user', READONLY_ROLE, '--json', *selected],
            env=dict(os.environ, PGPASSWORD=password), capture_output=True, text=True,
            timeout=600)
        assert result.returncode in (0, 1), result.stderr
        return json.loads(result.stdout)


def recap(result: subprocess.CompletedProcess) -> tuple[int, int, int]:
    match = RECAP.search(result.stdout)
    assert match, 'no PLAY RECAP for localhost:\n' + result.stdout[-3000:] + result.stderr
    return tuple(int(group) for group in match.groups())


def drop_cluster(major: str) -> None:
    subprocess.run(['pg_dropcluster', '--stop', major, CLUSTER], capture_output=True)


def cluster_majors() -> list[str]:
    out = subprocess.run(['pg_lsclusters', '--json'], capture_output=True, text=True).stdout
    return [str(c['version']) for c in json.loads(out or '[]') if c['cluster'] == CLUSTER]


@pytest.fixture(scope='module')
def site() -> Iterator[SiteRun]:
    root = pathlib.Path(tempfile.mkdtemp(prefix='postgres_hr_e2e_'))
    for major in cluster_majors():
        drop_cluster(major)
    run = SiteRun(root, free_port())
    first = run.playbook()
    run.first = first
    assert first.returncode == 0, first.stdout[-5000:] + first.stderr
    yield run
    for major in cluster_majors():
        drop_cluster(major)
    shutil.rmtree(root, ignore_errors=True)


def test_first_run_prints_the_scenario_table(site):
    assert recap(site.first)[0] > 0
    table = site.first.stdout[site.first.stdout.index('scenario'):]
    for name in SCENARIOS:
        assert re.search(r'%s\s+\d+\s+\d+' % name, table), name


def test_second_run_changes_nothing(site):
    again = site.playbook()
    assert again.returncode == 0, again.stdout[-5000:]
    assert recap(again) == (0, 0, 0)


def test_check_mode_on_a_converged_host_reports_no_change(site):
    checked = site.playbook('--check', '--diff')
    assert checked.returncode == 0, checked.stdout[-5000:]
    assert recap(checked) == (0, 0, 0)


def test_schema_has_thirteen_columns_the_indexes_and_every_migration(site):
    columns = site.superuser_sql("SELECT column_name FROM information_schema.columns "
                                 "WHERE table_name = 'employees' ORDER BY ordinal_position")
    assert [row[0] for row in columns] == [
        'employee_id', 'first_name', 'last_name', 'department', 'role', 'employment_status',
        'hire_date', 'leave_type', 'salary_local', 'salary_usd', 'manager_name', 'created_at',
        'updated_at']
    indexes = site.superuser_sql("SELECT indexname FROM pg_indexes "
                                 "WHERE tablename = 'employees'")
    assert {row[0] for row in indexes} >= {
        'idx_department', 'idx_hire_date', 'idx_employment_status', 'idx_manager_name'}
    history = site.superuser_sql('SELECT version, name, checksum '
                                 'FROM postgres_hr_schema_history ORDER BY version')
    assert [row[:2] for row in history] == [('1', 'create_employees'),
                                            ('2', 'updated_at_trigger'),
                                            ('3', 'leave_type_index')]
    assert all(re.fullmatch('[0-9a-f]{64}', row[2]) for row in history)
    owners = site.superuser_sql(
        "SELECT pg_get_userbyid(datdba), (SELECT tableowner FROM pg_tables "
        "WHERE tablename = 'employees') FROM pg_database WHERE datname = 'hr_db'")
    assert owners == [('hr_owner', 'hr_owner')]


def test_readonly_role_reads_but_cannot_write(site):
    # BEGIN READ WRITE steps over default_transaction_read_only, so privileges answer alone.
    password = vault_password(site)
    conn = site.connect('query_app_readonly', password)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute('SELECT count(*) FROM employees')
        assert cur.fetchone()[0] >= 52
        for statement in (
                "INSERT INTO employees (first_name, last_name, department, role, "
                "employment_status, hire_date, salary_local, salary_usd) VALUES "
                "('A', 'B', 'C', 'D', 'Active', CURRENT_DATE, 1, 1)",
                "UPDATE employees SET salary_usd = 1",
                "DELETE FROM employees",
                "TRUNCATE employees",
                "CREATE TABLE stolen (id int)"):
            cur.execute('BEGIN READ WRITE')
            with pytest.raises(psycopg2.Error) as caught:
                cur.execute(statement)
            cur.execute('ROLLBACK')
            assert caught.value.pgcode == '42501', statement
            assert 'permission denied' in str(caught.value)
    conn.close()
    with pytest.raises(psycopg2.OperationalError):
        site.connect('query_app_readonly', password + 'x')


def test_password_never_in_verbose_output(site):
    password = vault_password(site)
    verbose = site.playbook('-vvv', '--diff')
    assert verbose.returncode == 0, verbose.stdout[-5000:]
    assert password not in verbose.stdout + verbose.stderr


def test_bad_input_fails_before_any_change(site):
    result = site.playbook('-e', 'postgres_hr_cluster_name=hr_never_made',
                           '-e', 'postgres_hr_readonly_role=Bad-Name')
    assert result.returncode != 0
    assert 'postgres_hr inputs are invalid' in result.stdout
    assert 'hr_never_made' not in subprocess.run(['pg_lsclusters'], capture_output=True,
                                                 text=True).stdout
    unknown_key = site.playbook('-e', '{"postgres_hr_scenarios": [{"name": "x", '
                                      '"predicate": "true", "minimum": 1, "colour": "red"}]}')
    assert unknown_key.returncode != 0
    assert 'colour' in unknown_key.stdout


def test_failing_step_names_itself_and_keeps_earlier_steps(site):
    impossible = ('{"postgres_hr_scenarios": [{"name": "everyone_twice", '
                  '"predicate": "true", "minimum": 1000000}]}')
    result = site.playbook('-e', impossible)
    assert result.returncode != 0
    assert 'everyone_twice' in result.stdout and '1000000' in result.stdout
    assert 'postgres_hr stopped at task' in result.stdout
    assert int(site.superuser_sql('SELECT count(*) FROM employees')[0][0]) >= 52


def test_check_mode_on_a_host_without_the_cluster_changes_nothing(site):
    result = site.playbook('--check', '-e', 'postgres_hr_cluster_name=hr_e2e_check',
                           '-e', 'postgres_hr_port=%d' % free_port())
    assert result.returncode == 0, result.stdout[-5000:]
    assert 'Check mode: cluster' in result.stdout and 'would be created' in result.stdout
    assert 'hr_e2e_check' not in subprocess.run(['pg_lsclusters'], capture_output=True,
                                                text=True).stdout


# Hostile SQL, as the read-only role over TCP: tests/probes/hostile_sql.py, the same file the
# molecule scenario runs inside its containers.

@pytest.fixture(scope='module')
def probe_report(site) -> dict[str, Any]:
    return site.probe(vault_password(site))


@pytest.mark.parametrize('probe', PROBES, ids=[probe.name for probe in PROBES])
def test_hostile_sql_is_refused_with_its_sqlstate(probe_report, probe):
    outcome = next(o for o in probe_report['probes'] if o['name'] == probe.name)
    assert outcome['ok'], (
        '%s (%s) expected SQLSTATE %s, got %s: %s' % (
            probe.name, probe.why, probe.expected, outcome['sqlstate'], outcome['message']))


def test_limits_are_the_role_defaults(site, probe_report):
    limits = probe_report['limits']
    assert limits['statement_timeout'] == '5000ms'
    assert limits['idle_in_transaction_session_timeout'] == '10000ms'
    assert limits['temp_file_limit'] == '65536kB'
    assert limits['default_transaction_read_only'] == 'on'
    assert limits['connection_limit'] == ROLE_DEFAULTS['postgres_hr_readonly_connection_limit']
    settings = site.superuser_sql(
        "SELECT unnest(setconfig) FROM pg_db_role_setting "
        "WHERE setrole = 'query_app_readonly'::regrole ORDER BY 1")
    assert [row[0] for row in settings] == [
        'default_transaction_read_only=on', 'idle_in_transaction_session_timeout=10s',
        'statement_timeout=5s', 'temp_file_limit=64MB']


def test_catalog_confines_the_read_only_role(site):
    # What the server would allow with pg_hba.conf out of the way: the privileges alone.
    other_databases = site.superuser_sql(
        "SELECT datname FROM pg_database WHERE datallowconn AND datname <> 'hr_db' "
        "AND has_database_privilege('query_app_readonly', oid, 'CONNECT')")
    assert other_databases == []
    assert site.superuser_sql(
        "SELECT has_database_privilege('public', 'hr_db', 'CONNECT'), "
        "has_database_privilege('query_app_readonly', 'hr_db', 'TEMPORARY'), "
        "has_schema_privilege('query_app_readonly', 'public', 'CREATE'), "
        "has_schema_privilege('public', 'public', 'CREATE'), "
        "(SELECT count(*) FROM pg_auth_members "
        " WHERE member = 'query_app_readonly'::regrole)") == [('f', 'f', 'f', 'f', '0')]
    signatures = ';'.join(ROLE_VARS['__postgres_hr_revoked_functions'])
    executable = site.superuser_sql(
        "SELECT signature FROM unnest(string_to_array('%s', ';')) AS signature "
        "WHERE to_regprocedure('pg_catalog.' || signature) IS NOT NULL "
        "AND (has_function_privilege('public', to_regprocedure('pg_catalog.' || signature), "
        "'EXECUTE') OR has_function_privilege('query_app_readonly', "
        "to_regprocedure('pg_catalog.' || signature), 'EXECUTE'))" % signatures)
    assert executable == []


def test_pg_hba_admits_the_read_only_role_to_hr_db_by_scram_from_loopback_only(site):
    rules = site.superuser_sql(
        "SELECT type, array_to_string(database, ','), array_to_string(user_name, ','), "
        "coalesce(address, ''), auth_method, coalesce(error, '') FROM pg_hba_file_rules "
        "ORDER BY line_number", dbname='postgres')
    assert all(rule[5] == '' for rule in rules), rules
    assert rules[0][:3] == ('local', 'all', 'postgres') and rules[0][4] == 'peer'
    readonly = [rule[:5] for rule in rules if rule[2] == READONLY_ROLE]
    assert readonly == [
        ('host', 'hr_db', READONLY_ROLE, '127.0.0.1', 'scram-sha-256'),
        ('host', 'hr_db', READONLY_ROLE, '::1', 'scram-sha-256'),
        ('local', 'all', READONLY_ROLE, '', 'reject'),
        ('host', 'all', READONLY_ROLE, 'all', 'reject')]
    assert not [rule for rule in rules if rule[2] == 'all' and rule[4] != 'reject']
    assert site.superuser_sql('SHOW password_encryption') == [('scram-sha-256',)]


TAMPERING = tampering(READONLY_ROLE)


@pytest.fixture
def statement_log(site) -> Iterator[pathlib.Path]:
    """The cluster logs every statement while the test runs."""
    site.superuser_sql("ALTER SYSTEM SET log_statement = 'all'")
    site.superuser_sql('SELECT pg_reload_conf()')
    yield pathlib.Path(site.cluster_info()['logfile'])
    site.superuser_sql('ALTER SYSTEM RESET log_statement')
    site.superuser_sql('SELECT pg_reload_conf()')


def test_drift_is_reported_then_repaired_without_the_password_in_any_log(
        site, statement_log):
    password = vault_password(site)
    hba_file = pathlib.Path(site.cluster_info()['configdir']) / 'pg_hba.conf'
    with hba_file.open('a') as hba:
        hba.write('host all all 0.0.0.0/0 trust\n')
    for statement in TAMPERING:
        site.superuser_sql(statement)
    log_offset = statement_log.stat().st_size

    drift = site.playbook('--check', playbook='playbooks/check_drift.yml')
    repaired = site.playbook('-vvv', '--diff')
    clean = site.playbook('--check', playbook='playbooks/check_drift.yml')

    report = drift.stdout + drift.stderr
    assert drift.returncode != 0
    assert 'has drifted from what postgres_hr makes' in report
    for label in DRIFT_LABELS:
        assert label in report, label
    assert repaired.returncode == 0, repaired.stdout[-5000:]
    assert recap(repaired)[0] > 0
    assert clean.returncode == 0, clean.stdout[-5000:]
    assert 'No drift' in clean.stdout
    log = statement_log.read_text(errors='replace')[log_offset:]
    # The log really holds statements of the repair, so the absence below means something.
    assert 'REVOKE "pg_read_all_data" FROM "query_app_readonly"' in log
    for text in (drift.stdout, drift.stderr, repaired.stdout, repaired.stderr, log):
        assert text.count(password) == 0
    assert 'SCRAM-SHA-256$' not in log
    assert 'trust' not in hba_file.read_text()
    report = site.probe(password)
    assert report['passed'], [o for o in report['probes'] if not o['ok']]


def test_drift_check_refuses_to_run_without_check_mode(site):
    result = site.playbook(playbook='playbooks/check_drift.yml')
    assert result.returncode != 0
    assert 'run it with --check' in result.stdout


def test_column_list_hides_the_other_columns(site):
    password = vault_password(site)
    shown = ['employee_id', 'first_name', 'last_name', 'department', 'role',
             'employment_status', 'hire_date', 'leave_type', 'salary_usd', 'manager_name']
    listed = site.playbook('-e', json.dumps({'postgres_hr_readonly_columns': shown}))
    try:
        assert listed.returncode == 0, listed.stdout[-5000:]
        readable = site.superuser_sql(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'employees'::regclass "
            "AND attnum > 0 AND has_column_privilege('query_app_readonly', attrelid, attnum, "
            "'SELECT') ORDER BY attnum")
        assert [row[0] for row in readable] == shown
        conn = site.connect(READONLY_ROLE, password)
        with conn.cursor() as cur:
            cur.execute('SELECT count(*), max(salary_usd) FROM employees')
            for hidden in ('SELECT salary_local FROM employees', 'SELECT * FROM employees'):
                conn.rollback()
                with pytest.raises(psycopg2.Error) as caught:
                    cur.execute(hidden)
                assert caught.value.pgcode == '42501', hidden
        conn.close()
    finally:
        whole = site.playbook()
    assert whole.returncode == 0, whole.stdout[-5000:]
    assert site.superuser_sql("SELECT has_table_privilege('query_app_readonly', 'employees', "
                              "'SELECT')") == [('t',)]


def test_unparsable_pg_hba_rule_is_put_back_before_any_reload(site):
    hba_file = pathlib.Path(site.cluster_info()['configdir']) / 'pg_hba.conf'
    before = hashlib.sha256(hba_file.read_bytes()).hexdigest()
    bad_rule = {'postgres_hr_hba_extra_rules': [
        {'type': 'host', 'database': 'hr_db', 'user': 'hr_reporting',
         'address': '10.0.0.0/33', 'method': 'scram-sha-256'}]}

    result = site.playbook('-e', json.dumps(bad_rule))

    assert result.returncode != 0
    assert 'invalid CIDR mask' in result.stdout
    assert 'previous file is back in place' in result.stdout
    assert hashlib.sha256(hba_file.read_bytes()).hexdigest() == before
    conn = site.connect(READONLY_ROLE, vault_password(site))
    conn.close()
