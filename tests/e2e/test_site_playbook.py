"""End-to-end: `ansible-playbook site.yml` against this machine, as `make site` runs it.

The run targets a cluster of its own (name `hr_e2e`, a free port) next to whatever else the
machine has, with a vault password and vault file generated for this test run, and drops the
cluster afterwards. Nothing here stands in for PostgreSQL or Ansible.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
from typing import Iterator

import psycopg2
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
CLUSTER = 'hr_e2e'
SCENARIOS = ('recent_hires', 'engineering_high_earners', 'parental_leave', 'managed_by_john_doe')
RECAP = re.compile(r'^localhost\s+: ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)',
                   re.MULTILINE)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='provisions this machine: needs root')


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

    def playbook(self, *extra: str) -> subprocess.CompletedProcess:
        env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
                   ANSIBLE_FORCE_COLOR='0')
        return subprocess.run(
            ['ansible-playbook', 'site.yml', '-i', str(self.inventory / 'hosts.yml'),
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


def test_schema_has_thirteen_columns_four_indexes_and_two_migrations(site):
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
                                            ('2', 'updated_at_trigger')]
    assert all(re.fullmatch('[0-9a-f]{64}', row[2]) for row in history)
    owners = site.superuser_sql(
        "SELECT pg_get_userbyid(datdba), (SELECT tableowner FROM pg_tables "
        "WHERE tablename = 'employees') FROM pg_database WHERE datname = 'hr_db'")
    assert owners == [('hr_owner', 'hr_owner')]


def test_readonly_role_reads_but_cannot_write(site):
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
            with pytest.raises(psycopg2.Error) as caught:
                cur.execute(statement)
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
