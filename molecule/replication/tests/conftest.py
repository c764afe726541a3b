"""Fixtures for the replication verify step: the primary, its replicas, SQL run inside them,
and converges of the scenario's playbook provoked by the tests themselves.

Containers are reached with `podman exec` (testinfra's podman:// backend for files). SQL runs
inside the containers with psql: as the postgres superuser over the Unix socket (peer), or as
the read-only role over TCP to 127.0.0.1 with its vault password, passed only as PGPASSWORD in
the environment of `podman exec --env PGPASSWORD`.

Test files run in the order of their names (molecule passes them to pytest sorted): the
standby state first, then reads, propagation, a restart, and last the tests that re-provision
a replica.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import pytest
import testinfra
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

# The role's defaults, which the converge playbook keeps.
DATABASE = 'hr_db'
PORT = 5432
CLUSTER = 'main'
MAJOR = 15
READONLY_ROLE = 'query_app_readonly'
REPLICATION_ROLE = 'hr_replicator'
PASSFILE = '/var/lib/postgresql/.postgres_hr_replication.pgpass'
DATA_DIR = f'/var/lib/postgresql/{MAJOR}/{CLUSTER}'
# postgres_hr_replica_max_lag_seconds, the role's default: the bound the tests hold the
# replicas to as well.
MAX_LAG_S = 30
READY_TIMEOUT_S = 60
# A converge of the three containers takes about 70 s here; apt alone may take minutes.
PLAYBOOK_TIMEOUT_S = 900

SCENARIO_DIR = pathlib.Path(__file__).resolve().parent.parent
MOLECULE_FILE = pathlib.Path(os.environ.get('MOLECULE_FILE', SCENARIO_DIR / 'molecule.yml'))

# psql and podman helpers shared with the other scenarios' verify steps.
sys.path.insert(0, str(SCENARIO_DIR.parent / 'shared'))
from podman_psql import PSQL_OPTIONS, PsqlResult, podman  # noqa: E402,F401


def platforms_in(group: str) -> list[str]:
    with MOLECULE_FILE.open(encoding='utf-8') as stream:
        platforms = yaml.safe_load(stream)['platforms']
    return [platform['name'] for platform in platforms if group in platform.get('groups', [])]


PRIMARY = platforms_in('hr_primary')[0]
REPLICAS = platforms_in('hr_replicas')
ALL_HOSTS = [PRIMARY, *REPLICAS]


def slot_name(host: str) -> str:
    """The slot the role names after a replica's inventory name."""
    return ('postgres_hr_' + re.sub('[^a-z0-9_]', '_', host.lower()))[:63]


def superuser_sql(container: str, sql: str, database: str = DATABASE,
                  check: bool = True) -> PsqlResult:
    """SQL as the postgres superuser over the container's Unix socket."""
    out = podman('exec', '--user', 'postgres', container, 'psql', '-p', str(PORT),
                 '-d', database, *PSQL_OPTIONS, '-c', sql)
    result = PsqlResult(out.returncode, out.stdout, out.stderr)
    if check and result.rc != 0:
        pytest.fail(f'psql as postgres on {container} port {PORT} database {database} failed '
                    f'(rc {result.rc}) for: {sql}\n{result.stderr}')
    return result


def readonly_sql(container: str, password: str, sql: str) -> PsqlResult:
    """SQL over TCP to 127.0.0.1 as the read-only role, the password only in the environment."""
    conninfo = (f'host=127.0.0.1 port={PORT} dbname={DATABASE} user={READONLY_ROLE} '
                'connect_timeout=10')
    out = podman('exec', '--env', 'PGPASSWORD', container, 'psql', conninfo, *PSQL_OPTIONS,
                 '-c', sql, env=dict(os.environ, PGPASSWORD=password))
    return PsqlResult(out.returncode, out.stdout, out.stderr)


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> float:
    """Poll every half second; return the seconds it took, or fail the test naming `what`."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout_s:
            pytest.fail(f'{what} did not happen within {timeout_s:.0f} s')
        time.sleep(0.5)
    return time.monotonic() - started


def wait_until_ready(container: str) -> None:
    wait_for(lambda: podman('exec', container, 'pg_isready', '-q', '-h', '/var/run/postgresql',
                            '-p', str(PORT)).returncode == 0,
             READY_TIMEOUT_S, f'cluster {MAJOR}/{CLUSTER} on {container} accepting connections')


def replays(container: str, sql: str, expected: list[list[str]]) -> Callable[[], bool]:
    """A predicate for wait_for: the replica's superuser sees `expected` for `sql`."""
    return lambda: superuser_sql(container, sql, check=False).rows == expected


def address_of(container: str) -> str:
    out = podman('exec', container, 'hostname', '--all-ip-addresses')
    assert out.returncode == 0, out.stderr
    return out.stdout.split()[0]


@dataclass
class PlaybookRun:
    """One ansible-playbook run of the scenario's converge, with the JSON callback's report."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def report(self) -> dict[str, Any]:
        # At -vvv, connection and module lines come before the JSON document on stdout.
        start = 0 if self.stdout.startswith('{') else self.stdout.find('\n{\n') + 1
        try:
            return json.loads(self.stdout[start:])
        except json.JSONDecodeError:
            pytest.fail(f'ansible-playbook printed no JSON report (rc {self.returncode}):\n'
                        f'{self.stdout[-3000:]}\n{self.stderr[-3000:]}')

    def stats(self, host: str) -> dict[str, int]:
        return self.report['stats'][host]

    def messages(self, host: str) -> list[str]:
        """Every `msg` the host's tasks returned."""
        found = []
        for play in self.report['plays']:
            for task in play['tasks']:
                result = task['hosts'].get(host)
                if result is not None and 'msg' in result:
                    found.append(str(result['msg']))
        return found


def inventory_without(host: str, directory: pathlib.Path) -> pathlib.Path:
    """A copy of molecule's inventory in `directory` from which `host` is gone, as if it had
    been taken out of the inventory."""
    with open(os.environ['MOLECULE_INVENTORY_FILE'], encoding='utf-8') as stream:
        inventory = yaml.safe_load(stream)
    for group in inventory.values():
        (group.get('hosts') or {}).pop(host, None)
    path = directory / 'inventory.yml'
    path.write_text(yaml.safe_dump(inventory), encoding='utf-8')
    return path


def ansible_playbook(*extra: str, inventory: pathlib.Path | None = None,
                     playbook: str = 'converge.yml') -> PlaybookRun:
    """Run a playbook of the scenario (by default the converge playbook, as the converge step
    does) on the inventory's containers.

    Runs with the environment molecule gives the verifier (its provisioner's: ANSIBLE_LIBRARY,
    ANSIBLE_ROLES_PATH, the vault password client, the MOLECULE_* paths).
    """
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK='ansible.posix.json', ANSIBLE_NOCOLOR='1')
    command = [shutil.which('ansible-playbook') or 'ansible-playbook',
               '-i', str(inventory or os.environ['MOLECULE_INVENTORY_FILE']),
               str(SCENARIO_DIR / playbook), *extra]
    out = subprocess.run(command, capture_output=True, text=True, env=env,
                         timeout=PLAYBOOK_TIMEOUT_S, check=False)
    return PlaybookRun(out.returncode, out.stdout, out.stderr)


@pytest.fixture(scope='session', autouse=True)
def molecule_environment() -> None:
    for variable in ('MOLECULE_INVENTORY_FILE', 'MOLECULE_EPHEMERAL_DIRECTORY'):
        if not os.environ.get(variable):
            pytest.fail(f'{variable} is unset: run these tests with `molecule verify -s '
                        'replication`, which provides the inventory and vault of the converge')
    for container in ALL_HOSTS:
        if podman('exec', container, 'true').returncode != 0:
            pytest.fail(f'container {container} does not answer `podman exec`; run '
                        '`molecule converge -s replication` (or scripts/run-molecule) first')


@pytest.fixture(scope='session')
def vault() -> dict[str, str]:
    """This run's vault vars (see ../../default/vault-password)."""
    vault_dir = pathlib.Path(os.environ['MOLECULE_EPHEMERAL_DIRECTORY']) / 'vault'
    secret = VaultSecret((vault_dir / 'password').read_bytes().strip())
    plaintext = VaultLib([('default', secret)]).decrypt((vault_dir / 'vars.yml').read_bytes())
    return yaml.safe_load(plaintext)


@pytest.fixture(scope='session')
def readonly_password(vault: dict[str, str]) -> str:
    return str(vault['vault_postgres_hr_readonly_password'])


@pytest.fixture(scope='session')
def replication_password(vault: dict[str, str]) -> str:
    return str(vault['vault_postgres_hr_replication_password'])


@pytest.fixture
def running_replicas_afterwards() -> Iterator[None]:
    """Whatever the test did, every replica's cluster runs again when it ends."""
    yield
    for replica in REPLICAS:
        clusters = json.loads(podman('exec', replica, 'pg_lsclusters', '--json').stdout or '[]')
        if not any(cluster['running'] for cluster in clusters if cluster['cluster'] == CLUSTER):
            podman('exec', replica, 'pg_ctlcluster', str(MAJOR), CLUSTER, 'start')
        wait_until_ready(replica)


def root_host(container: str) -> Any:
    return testinfra.get_host(f'podman://{container}')


def run_in(container: str, command: str, user: str = 'root') -> subprocess.CompletedProcess:
    """A shell command inside the container; the caller checks the outcome."""
    return podman('exec', '--user', user, container, 'bash', '-c', command,
                  timeout=PLAYBOOK_TIMEOUT_S)


def checked(out: subprocess.CompletedProcess, what: str) -> str:
    assert out.returncode == 0, f'{what} failed (rc {out.returncode}): {out.stderr}'
    return out.stdout


def quoted(value: str) -> str:
    return shlex.quote(value)
