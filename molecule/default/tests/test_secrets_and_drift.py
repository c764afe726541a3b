"""Drift is reported without repair, then repaired by a converge at -vvv, while the server logs
every statement: neither the output nor the server log holds the read-only password.

The tampering is what the issue measured a read-only role could do to itself (inside
BEGIN READ WRITE), what a cluster upgraded from PostgreSQL 14 keeps (CREATE on public for
PUBLIC), and grants and pg_hba.conf rules someone added by hand. The test leaves the container
converged, as it found it.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
from typing import Any, Callable, Iterator

import pytest

from conftest import READONLY_ROLE, Platform, PsqlResult

PROJECT_DIR = pathlib.Path(os.environ.get('MOLECULE_PROJECT_DIRECTORY',
                                          pathlib.Path(__file__).resolve().parents[3]))
PLAYBOOK_TIMEOUT_S = 900

# The drift test of tests/e2e uses the same tampering and report labels.
sys.path.insert(0, str(PROJECT_DIR / 'tests' / 'probes'))
from drift_tampering import DRIFT_LABELS, tampering  # noqa: E402

TAMPERING = tampering(READONLY_ROLE)


def ansible_playbook(platform: Platform, playbook: str,
                     *extra: str) -> subprocess.CompletedProcess:
    """Run a project playbook on one container with molecule's inventory and settings.

    The vault vars file of this run is passed encrypted (-e @file); ansible-playbook decrypts
    it with molecule's vault password client, so the password is on no command line.
    """
    vault_vars = pathlib.Path(os.environ['MOLECULE_EPHEMERAL_DIRECTORY']) / 'vault' / 'vars.yml'
    command = [shutil.which('ansible-playbook') or 'ansible-playbook',
               '-i', os.environ['MOLECULE_INVENTORY_FILE'], '--limit', platform.name,
               '-e', f'@{vault_vars}', str(PROJECT_DIR / playbook), *extra]
    env = dict(os.environ, ANSIBLE_NOCOLOR='1', ANSIBLE_FORCE_COLOR='0')
    return subprocess.run(command, capture_output=True, text=True, env=env,
                          timeout=PLAYBOOK_TIMEOUT_S, check=False)


def changed_count(result: subprocess.CompletedProcess, platform: Platform) -> int:
    for line in result.stdout.splitlines():
        if line.startswith(platform.name + ' ') and 'changed=' in line:
            return int(line.split('changed=')[1].split()[0])
    raise AssertionError(f'no PLAY RECAP line for {platform.name}:\n{result.stdout[-3000:]}')


@pytest.fixture
def statement_log(host: Any, platform: Platform,
                  superuser_sql: Callable[..., PsqlResult]) -> Iterator[str]:
    """Path of the server log, with every statement logged while the test runs."""
    clusters = json.loads(host.check_output('pg_lsclusters --json'))
    logfile = next(c['logfile'] for c in clusters
                   if int(c['version']) == platform.postgresql_major)
    superuser_sql("ALTER SYSTEM SET log_statement = 'all'")
    superuser_sql('SELECT pg_reload_conf()')
    yield logfile
    superuser_sql('ALTER SYSTEM RESET log_statement')
    superuser_sql('SELECT pg_reload_conf()')


def test_drift_is_reported_then_repaired_without_the_password_in_any_log(
        host: Any, platform: Platform, readonly_password: str, statement_log: str,
        superuser_sql: Callable[..., PsqlResult]) -> None:
    clusters = json.loads(host.check_output('pg_lsclusters --json'))
    hba_file = next(c['config']['hba_file'] for c in clusters
                    if int(c['version']) == platform.postgresql_major)
    assert host.run(f"echo 'host all all 0.0.0.0/0 trust' >> {hba_file}").rc == 0
    for statement in TAMPERING:
        superuser_sql(statement)
    log_offset = int(host.check_output(f'stat -c %s {statement_log}'))

    drift = ansible_playbook(platform, 'playbooks/check_drift.yml', '--check')
    repaired = ansible_playbook(platform, 'playbooks/hr_database.yml', '-vvv', '--diff')
    clean = ansible_playbook(platform, 'playbooks/check_drift.yml', '--check')
    log = host.check_output(f'tail -c +{log_offset + 1} {statement_log}')

    # molecule's callback prints a failed task's message on stderr.
    report = drift.stdout + drift.stderr
    assert drift.returncode != 0, report[-3000:]
    assert 'has drifted from what postgres_hr makes' in report, report[-3000:]
    missing = [label for label in DRIFT_LABELS if label not in report]
    assert not missing, f'drift report does not name {missing}:\n{report[-3000:]}'
    assert repaired.returncode == 0, repaired.stdout[-5000:]
    assert changed_count(repaired, platform) > 0
    assert clean.returncode == 0, clean.stdout[-5000:]
    assert 'No drift' in clean.stdout
    # The log holds the repair's own statements, so the absences below mean something.
    assert f'REVOKE "pg_read_all_data" FROM "{READONLY_ROLE}"' in log
    outputs = {'drift check': report,
               'converge -vvv': repaired.stdout + repaired.stderr, 'server log': log}
    for where, text in outputs.items():
        assert text.count(readonly_password) == 0, f'the password is in the {where}'
    assert 'SCRAM-SHA-256$' not in log
    assert 'trust' not in host.file(hba_file).content_string
