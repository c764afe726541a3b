"""End-to-end: playbooks/rotate_readonly_password.yml on two database hosts, with real faults.

The two hosts are two clusters of this machine (hr_rot_a and hr_rot_b on free ports), reached
as two inventory hosts, so every per-host path of the playbook runs: one host can be stopped
while the other is changed. Faults are caused between two tasks by the test-only callback in
tests/plugins/callback (a stopped server, a login that stops working, a vault directory made
immutable, the run killed). After each one the password the vault holds must log in on every
host. A third cluster runs the dual (a/b login) mode with its grace period.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import re
import shutil
import subprocess
import tempfile
import time
from typing import Iterator

import psycopg2
import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
ROTATE = 'playbooks/rotate_readonly_password.yml'
ROLE = 'query_app_readonly'
HOSTS = {'hr-a': 'hr_rot_a', 'hr-b': 'hr_rot_b'}
PENDING_KEYS = {'vault_postgres_hr_readonly_pending_password',
                'vault_postgres_hr_readonly_pending_login'}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='provisions this machine: needs root')


def free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def drop_clusters(names) -> None:
    out = subprocess.run(['pg_lsclusters', '--json'], capture_output=True, text=True).stdout
    for cluster in json.loads(out or '[]'):
        if cluster['cluster'] in names:
            subprocess.run(['pg_dropcluster', '--stop', str(cluster['version']),
                            cluster['cluster']], capture_output=True)


class Inventory:
    """A private inventory of database hosts on this machine, with its own vault."""

    def __init__(self, root: pathlib.Path, hosts: dict[str, str], **group_vars) -> None:
        self.root = root
        self.clusters = hosts
        self.ports = {host: free_port() for host in hosts}
        self.vault_pass = root / 'vault_pass'
        self.vault_file = root / 'inventory' / 'group_vars' / 'all' / 'vault.yml'
        self.vault_file.parent.mkdir(parents=True)
        inventory = {'all': {'children': {'hr_databases': {
            'hosts': {host: {'postgres_hr_cluster_name': cluster,
                             'postgres_hr_port': self.ports[host]}
                      for host, cluster in hosts.items()},
            'vars': {'ansible_connection': 'local',
                     'ansible_python_interpreter': '/usr/bin/python3',
                     # Faults are meant to be seen quickly, not waited out.
                     'postgres_hr_connect_retries': 2,
                     'postgres_hr_connect_retry_delay': 1, **group_vars}}}}}
        self.hosts_file = root / 'inventory' / 'hosts.yml'
        self.hosts_file.write_text(yaml.safe_dump(inventory))
        subprocess.run([str(REPO / 'scripts' / 'bootstrap-vault'), str(self.vault_pass),
                        str(self.vault_file)], check=True, capture_output=True)

    def playbook(self, playbook: str, *extra: str, fault: dict[str, str] | None = None
                 ) -> subprocess.CompletedProcess:
        env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
                   ANSIBLE_FORCE_COLOR='0')
        if fault:
            env.update(ANSIBLE_CALLBACK_PLUGINS=str(REPO / 'tests' / 'plugins' / 'callback'),
                       ANSIBLE_CALLBACKS_ENABLED='postgres_hr_fault',
                       **{'POSTGRES_HR_FAULT_' + key.upper(): value
                          for key, value in fault.items()})
        # One fork: the hosts share this machine's apt and dpkg locks.
        return subprocess.run(
            ['ansible-playbook', playbook, '-i', str(self.hosts_file), '-f', '1',
             '--vault-id', 'rot@%s' % self.vault_pass, *extra],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=900)

    def vault(self) -> dict[str, str]:
        out = subprocess.run(['ansible-vault', 'view', '--vault-password-file',
                              str(self.vault_pass), str(self.vault_file)],
                             check=True, capture_output=True, text=True).stdout
        return yaml.safe_load(out)

    def logs_in(self, host: str, user: str, password: str) -> bool:
        try:
            psycopg2.connect(dbname='hr_db', user=user, password=password, host='127.0.0.1',
                             port=self.ports[host], connect_timeout=5).close()
        except psycopg2.OperationalError:
            return False
        return True

    def superuser_sql(self, host: str, query: str) -> str:
        return subprocess.run(
            ['runuser', '-u', 'postgres', '--', 'psql', '-X', '-q', '-A', '-t',
             '-v', 'ON_ERROR_STOP=1', '-p', str(self.ports[host]), '-d', 'hr_db', '-c', query],
            check=True, capture_output=True, text=True).stdout.strip()

    def start(self, host: str) -> None:
        subprocess.run(['pg_ctlcluster', self.major, self.clusters[host], 'start'], check=True)

    def server_logs(self) -> str:
        return ''.join(pathlib.Path('/var/log/postgresql/postgresql-%s-%s.log' % (
            self.major, cluster)).read_text(errors='replace')
            for cluster in self.clusters.values())


def assert_vault_password_works_everywhere(inventory: Inventory) -> dict[str, str]:
    vault = inventory.vault()
    login = vault.get('vault_postgres_hr_readonly_login', ROLE)
    for host in inventory.clusters:
        assert inventory.logs_in(host, login, vault['vault_postgres_hr_readonly_password']), \
            '%s refuses the vault password' % host
    return vault


def report(result: subprocess.CompletedProcess) -> str:
    """The failure message of the rotation, the per-host report included, on one line."""
    return re.sub(r'\s+', ' ', result.stdout)


@pytest.fixture(scope='module')
def pair() -> Iterator[Inventory]:
    root = pathlib.Path(tempfile.mkdtemp(prefix='postgres_hr_rotation_'))
    drop_clusters(HOSTS.values())
    inventory = Inventory(root, HOSTS)
    site = inventory.playbook('site.yml')
    assert site.returncode == 0, site.stdout[-5000:] + site.stderr
    inventory.major = inventory.superuser_sql('hr-a', 'SHOW server_version_num')[:2]
    # Every statement in the server log from here on: no password may show up in it.
    for host in HOSTS:
        inventory.superuser_sql(host, "ALTER SYSTEM SET log_statement = 'all'")
        inventory.superuser_sql(host, 'SELECT pg_reload_conf()')
    inventory.passwords = {inventory.vault()['vault_postgres_hr_readonly_password']}
    yield inventory
    subprocess.run(['chattr', '-i', str(inventory.vault_file.parent)], capture_output=True)
    drop_clusters(HOSTS.values())
    shutil.rmtree(root, ignore_errors=True)


def remember_passwords(inventory: Inventory) -> None:
    vault = inventory.vault()
    inventory.passwords |= {value for key, value in vault.items() if 'password' in key}


def test_rotation_sets_a_new_password_everywhere_and_refuses_the_old(pair):
    old = pair.vault()['vault_postgres_hr_readonly_password']
    rotated = pair.playbook(ROTATE, '-vvv')
    assert rotated.returncode == 0, rotated.stdout[-5000:] + rotated.stderr
    vault = assert_vault_password_works_everywhere(pair)
    new = vault['vault_postgres_hr_readonly_password']
    assert new != old and len(new) == 32 and new.isalnum()
    assert not PENDING_KEYS & set(vault)
    for host in HOSTS:
        assert not pair.logs_in(host, ROLE, old), host
    assert old not in rotated.stdout + rotated.stderr
    assert new not in rotated.stdout + rotated.stderr
    assert 'hr-a: rotated' in report(rotated) and 'hr-b: rotated' in report(rotated)
    # Atomic replacement leaves no temporary file, and the file stays private.
    assert [p.name for p in pair.vault_file.parent.iterdir()] == ['vault.yml']
    assert pair.vault_file.stat().st_mode & 0o777 == 0o600
    remember_passwords(pair)


def test_second_rotation_right_after_works(pair):
    old = pair.vault()['vault_postgres_hr_readonly_password']
    rotated = pair.playbook(ROTATE)
    assert rotated.returncode == 0, rotated.stdout[-5000:]
    assert assert_vault_password_works_everywhere(pair)[
        'vault_postgres_hr_readonly_password'] != old
    remember_passwords(pair)


def test_site_run_after_rotation_changes_nothing(pair):
    site = pair.playbook('site.yml')
    assert site.returncode == 0, site.stdout[-5000:]
    assert re.findall(r'changed=(\d+)', site.stdout) == ['0', '0']


def test_check_mode_changes_nothing_and_says_what_would_happen(pair):
    before = pair.vault_file.read_bytes()
    checked = pair.playbook(ROTATE, '--check')
    assert checked.returncode == 0, checked.stdout[-5000:]
    assert pair.vault_file.read_bytes() == before
    assert 'A rotation would generate a new 32-character password' in report(checked)
    assert_vault_password_works_everywhere(pair)


def test_host_stopped_between_stage_and_set_rolls_back_the_other(pair):
    old = pair.vault()['vault_postgres_hr_readonly_password']
    try:
        faulty = pair.playbook(ROTATE, fault={
            'after': 'Stage a new password in the vault file',
            'command': 'pg_ctlcluster %s %s stop -m fast' % (pair.major, HOSTS['hr-b'])})
        assert faulty.returncode != 0
        message = report(faulty)
        assert 'The rotation was rolled back: not every host took the new password' in message
        assert re.search(r'hr-a: took the staged password and logged in with it; rolled back '
                         r"to the vault's password; the vault password logs in", message)
        assert re.search(r'hr-b: "Set the staged password on %s" failed: .*; NOT rolled back, '
                         r"applying the vault's roles failed .*\(this run never changed its "
                         r'password\); THE VAULT PASSWORD DOES NOT LOG IN' % ROLE, message), \
            message[-3000:]
    finally:
        pair.start('hr-b')
    vault = assert_vault_password_works_everywhere(pair)
    assert vault['vault_postgres_hr_readonly_password'] == old
    assert not PENDING_KEYS & set(vault)


def test_failing_login_test_rolls_back_every_host(pair):
    old = pair.vault()['vault_postgres_hr_readonly_password']
    faulty = pair.playbook(ROTATE, fault={
        'after': 'Set the staged password on', 'host': 'hr-b',
        'command': "runuser -u postgres -- psql -X -q -p %d -c 'ALTER ROLE %s NOLOGIN'"
                   % (pair.ports['hr-b'], ROLE)})
    assert faulty.returncode != 0
    message = report(faulty)
    assert re.search(r'hr-b: "Stop this host when the staged password did not log in" failed: '
                     r'%s could not log in with the staged password: .*not permitted to log in'
                     % ROLE, message), message[-3000:]
    assert 'hr-a: took the staged password' in message
    vault = assert_vault_password_works_everywhere(pair)
    assert vault['vault_postgres_hr_readonly_password'] == old
    assert not PENDING_KEYS & set(vault)


def test_vault_not_writable_at_promote_rolls_back_and_keeps_the_vault(pair):
    old = pair.vault()['vault_postgres_hr_readonly_password']
    directory = pair.vault_file.parent
    try:
        faulty = pair.playbook(ROTATE, fault={
            'after': 'Decide whether the staged password can be promoted',
            'command': 'chattr +i %s' % directory})
    finally:
        subprocess.run(['chattr', '-i', str(directory)], check=True)
    assert faulty.returncode != 0
    message = report(faulty)
    assert 'The rotation was rolled back: the vault file could not be rewritten' in message
    assert 'The staged password stays in the vault file' in message
    vault = assert_vault_password_works_everywhere(pair)
    assert vault['vault_postgres_hr_readonly_password'] == old
    # Left from the failed run: staged but never promoted, and no host holds it any more.
    assert PENDING_KEYS <= set(vault)
    remember_passwords(pair)
    again = pair.playbook(ROTATE)
    assert again.returncode == 0, again.stdout[-5000:]
    vault = assert_vault_password_works_everywhere(pair)
    assert not PENDING_KEYS & set(vault)
    remember_passwords(pair)


def test_run_killed_after_the_set_recovers_on_the_next_rotation(pair):
    old = pair.vault()['vault_postgres_hr_readonly_password']
    killed = pair.playbook(ROTATE, fault={'after': 'Set the staged password on', 'host': 'hr-b',
                                          'command': 'kill'})
    assert killed.returncode == -9
    vault = pair.vault()
    assert vault['vault_postgres_hr_readonly_password'] == old
    staged = vault['vault_postgres_hr_readonly_pending_password']
    remember_passwords(pair)
    # Every host took the staged password before the kill, and the vault holds it.
    for host in HOSTS:
        assert pair.logs_in(host, ROLE, staged), host
    checked = pair.playbook(ROTATE, '--check')
    assert checked.returncode == 0, checked.stdout[-5000:]
    assert 'holds the password an interrupted rotation staged' in report(checked)
    again = pair.playbook(ROTATE)
    assert again.returncode == 0, again.stdout[-5000:]
    vault = assert_vault_password_works_everywhere(pair)
    assert not PENDING_KEYS & set(vault)
    for host in HOSTS:
        assert not pair.logs_in(host, ROLE, staged) and not pair.logs_in(host, ROLE, old)
    remember_passwords(pair)


def test_no_password_reached_the_server_log(pair):
    logs = pair.server_logs()
    # log_statement=all was on: the rotation's own login tests are in the log.
    assert 'statement: SELECT 1 AS logged_in' in logs
    for password in pair.passwords:
        assert password not in logs


@pytest.fixture(scope='module')
def dual() -> Iterator[Inventory]:
    root = pathlib.Path(tempfile.mkdtemp(prefix='postgres_hr_rotation_dual_'))
    drop_clusters(['hr_rot_dual'])
    inventory = Inventory(root, {'hr-dual': 'hr_rot_dual'},
                          postgres_hr_readonly_rotation_mode='dual')
    site = inventory.playbook('site.yml')
    assert site.returncode == 0, site.stdout[-5000:] + site.stderr
    inventory.major = inventory.superuser_sql('hr-dual', 'SHOW server_version_num')[:2]
    yield inventory
    drop_clusters(['hr_rot_dual'])
    shutil.rmtree(root, ignore_errors=True)


def test_dual_mode_makes_a_group_role_and_two_logins(dual):
    roles = dual.superuser_sql('hr-dual', (
        "SELECT string_agg(rolname || ':' || rolcanlogin || ':' || "
        "COALESCE((SELECT string_agg(g.rolname, ',') FROM pg_auth_members m JOIN pg_roles g "
        "ON g.oid = m.roleid WHERE m.member = r.oid), ''), ' ' ORDER BY rolname) "
        "FROM pg_roles r WHERE rolname LIKE '%s%%'" % ROLE))
    # The b login cannot log in before the first rotation gives it a password.
    assert roles == ('%s:false: %s_a:true:%s %s_b:false:%s' % (ROLE, ROLE, ROLE, ROLE, ROLE))
    password = dual.vault()['vault_postgres_hr_readonly_password']
    assert dual.logs_in('hr-dual', ROLE + '_a', password)
    assert not dual.logs_in('hr-dual', ROLE, password)


def test_dual_mode_keeps_old_credentials_working_through_the_grace_period(dual):
    old = dual.vault()['vault_postgres_hr_readonly_password']
    # The application's pooled connection, opened before the rotation.
    pooled = psycopg2.connect(dbname='hr_db', user=ROLE + '_a', password=old,
                              host='127.0.0.1', port=dual.ports['hr-dual'])
    pooled.autocommit = True
    grace = 20
    rotated = dual.playbook(ROTATE, '-e', 'postgres_hr_rotation_grace_seconds=%d' % grace)
    assert rotated.returncode == 0, rotated.stdout[-5000:] + rotated.stderr
    vault = dual.vault()
    assert vault['vault_postgres_hr_readonly_login'] == ROLE + '_b'
    assert vault['vault_postgres_hr_readonly_retired_password'] == old
    new = vault['vault_postgres_hr_readonly_password']
    expiry = datetime.datetime.strptime(vault['vault_postgres_hr_readonly_retired_valid_until'],
                                        '%Y-%m-%d %H:%M:%S+00').replace(
                                            tzinfo=datetime.timezone.utc)
    with pooled.cursor() as cur:
        cur.execute("SELECT count(*) FROM employees WHERE leave_type = 'Parental Leave'")
        assert cur.fetchone()[0] >= 2
    assert dual.logs_in('hr-dual', ROLE + '_b', new)
    assert datetime.datetime.now(datetime.timezone.utc) < expiry
    assert dual.logs_in('hr-dual', ROLE + '_a', old)
    # A site run with the rotated vault changes nothing, the expiry included.
    site = dual.playbook('site.yml')
    assert site.returncode == 0, site.stdout[-5000:]
    assert re.findall(r'changed=(\d+)', site.stdout) == ['0']
    time.sleep(max(0.0, (expiry - datetime.datetime.now(datetime.timezone.utc))
                   .total_seconds()) + 1)
    assert not dual.logs_in('hr-dual', ROLE + '_a', old)
    assert dual.logs_in('hr-dual', ROLE + '_b', new)
    pooled.close()


def test_dual_mode_second_rotation_moves_back_to_the_first_login(dual):
    before = dual.vault()
    rotated = dual.playbook(ROTATE)
    assert rotated.returncode == 0, rotated.stdout[-5000:]
    vault = assert_vault_password_works_everywhere(dual)
    assert vault['vault_postgres_hr_readonly_login'] == ROLE + '_a'
    assert vault['vault_postgres_hr_readonly_retired_password'] == before[
        'vault_postgres_hr_readonly_password']
    assert dual.logs_in('hr-dual', ROLE + '_b', before['vault_postgres_hr_readonly_password'])
