"""Fixtures for the failure_paths verify step: the converged container, SQL run inside it, and
converges of the project's playbook provoked by the tests themselves.

The container is reached with testinfra's podman:// backend (`podman exec`). Converges run
`ansible-playbook` with the environment molecule gives the verifier, which is its provisioner's
(ANSIBLE_CONFIG, ANSIBLE_LIBRARY, ANSIBLE_ROLES_PATH, the vault password client and the
MOLECULE_* paths), and with the JSON callback, so tests read task results and not screen text.

Test files run in the order of their names (molecule passes them to pytest sorted): each
failure is provoked on the container the previous test left converged and running.
"""

from __future__ import annotations

import json
import os
import pathlib
import shlex
import shutil
import subprocess
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import pytest
import testinfra
import yaml

# The role's defaults, which the converge playbook keeps.
DATABASE = 'hr_db'
PORT = 5432
CLUSTER = 'main'
HISTORY_TABLE = 'postgres_hr_schema_history'

SCENARIO_DIR = pathlib.Path(__file__).resolve().parent.parent
PROJECT_DIR = pathlib.Path(os.environ.get('MOLECULE_PROJECT_DIRECTORY', SCENARIO_DIR.parents[1]))
MOLECULE_FILE = pathlib.Path(os.environ.get('MOLECULE_FILE', SCENARIO_DIR / 'molecule.yml'))
# A whole converge on a converged host takes about 30 s; apt alone may take minutes.
PLAYBOOK_TIMEOUT_S = 900
READY_TIMEOUT_S = 60

PSQL_OPTIONS = ['-X', '-q', '-A', '-t', '-F', '\t', '-v', 'ON_ERROR_STOP=1']


def molecule_config() -> dict[str, Any]:
    with MOLECULE_FILE.open(encoding='utf-8') as stream:
        return yaml.safe_load(stream)


def converge_playbook() -> pathlib.Path:
    """The playbook molecule's converge step runs, as molecule.yml names it."""
    return (SCENARIO_DIR / molecule_config()['ansible']['playbooks']['converge']).resolve()


@dataclass
class Platform:
    """The container, and the cluster the converge made in it."""

    name: str
    postgresql_major: int

    @property
    def cluster(self) -> str:
        return f'{self.postgresql_major}/{CLUSTER}'


@dataclass
class PlaybookRun:
    """One ansible-playbook run on one host, with the JSON callback's report of it."""

    host: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def report(self) -> dict[str, Any]:
        try:
            return json.loads(self.stdout)
        except json.JSONDecodeError:
            pytest.fail(f'ansible-playbook printed no JSON report (rc {self.returncode}):\n'
                        f'{self.stdout[-3000:]}\n{self.stderr[-3000:]}')

    def results(self) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """(task, result) of every task that ran on the host, in order."""
        for play in self.report['plays']:
            for task in play['tasks']:
                result = task['hosts'].get(self.host)
                if result is not None:
                    yield task['task'], result

    def messages(self) -> list[str]:
        """Every `msg` the host's tasks returned: module messages, fail and debug output."""
        return [str(result['msg']) for _, result in self.results() if 'msg' in result]

    def failures(self) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        return [(task, result) for task, result in self.results() if result.get('failed')]

    @property
    def stats(self) -> dict[str, int]:
        return self.report['stats'][self.host]

    def summary(self) -> str:
        """The failed tasks and their messages, for assertion output."""
        lines = [f'rc {self.returncode} after {self.seconds:.0f} s, stats {self.stats}']
        lines += [f'{task["name"]}: {result.get("msg")}' for task, result in self.failures()]
        return '\n'.join(lines)


def ansible_playbook(platform: Platform, *extra: str,
                     roles_path: pathlib.Path | None = None) -> PlaybookRun:
    """Run molecule's converge playbook on the container, optionally with other roles.

    The vault vars file of this run is loaded by the playbook itself, decrypted with
    molecule's vault password client, so no secret is on the command line.
    """
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK='ansible.posix.json', ANSIBLE_NOCOLOR='1')
    if roles_path is not None:
        env['ANSIBLE_ROLES_PATH'] = str(roles_path)
    command = [shutil.which('ansible-playbook') or 'ansible-playbook',
               '-i', os.environ['MOLECULE_INVENTORY_FILE'], '--limit', platform.name,
               str(converge_playbook()), *extra]
    started = time.monotonic()
    out = subprocess.run(command, capture_output=True, text=True, env=env,
                         timeout=PLAYBOOK_TIMEOUT_S, check=False)
    return PlaybookRun(platform.name, out.returncode, out.stdout, out.stderr,
                       time.monotonic() - started)


@pytest.fixture(scope='session', autouse=True)
def molecule_environment() -> None:
    for variable in ('MOLECULE_INVENTORY_FILE', 'MOLECULE_EPHEMERAL_DIRECTORY'):
        if not os.environ.get(variable):
            pytest.fail(f'{variable} is unset: run these tests with `molecule verify -s '
                        f'failure_paths`, which provides the inventory and vault of the converge')


@pytest.fixture(scope='module', params=[p['name'] for p in molecule_config()['platforms']])
def host(request: pytest.FixtureRequest) -> Any:
    """The container as root."""
    root = testinfra.get_host(f'podman://{request.param}')
    if root.run('true').rc != 0:
        pytest.fail(f'container {request.param} does not answer `podman exec`; run '
                    '`molecule converge -s failure_paths` (or scripts/run-molecule) first')
    return root


def cluster_state(host: Any) -> dict[str, Any]:
    """The role's cluster as pg_lsclusters reports it."""
    clusters = json.loads(host.check_output('pg_lsclusters --json'))
    matches = [c for c in clusters if c['cluster'] == CLUSTER]
    if len(matches) != 1:
        pytest.fail(f'expected one cluster named {CLUSTER} on {host.backend.name}, '
                    f'pg_lsclusters lists {clusters}')
    return matches[0]


@pytest.fixture(scope='module')
def platform(host: Any) -> Platform:
    return Platform(name=host.backend.name,
                    postgresql_major=int(cluster_state(host)['version']))


@pytest.fixture(scope='module')
def superuser_sql(platform: Platform) -> Callable[[str], list[list[str]]]:
    """Rows of a query run as the postgres superuser over the Unix socket (peer)."""
    postgres_host = testinfra.get_host(f'podman://postgres@{platform.name}')

    def run(sql: str) -> list[list[str]]:
        command = ['psql', '-p', str(PORT), '-d', DATABASE, *PSQL_OPTIONS, '-c', sql]
        out = postgres_host.run(shlex.join(command))
        if out.rc != 0:
            pytest.fail(f'psql as postgres on {platform.name} port {PORT} database {DATABASE} '
                        f'failed (rc {out.rc}) for: {sql}\n{out.stderr}')
        return [line.split('\t') for line in out.stdout.splitlines() if line]

    return run


def wait_until_ready(host: Any, platform: Platform, timeout_s: float = READY_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while host.run(f'pg_isready -q -h /var/run/postgresql -p {PORT}').rc != 0:
        if time.monotonic() > deadline:
            pytest.fail(f'cluster {platform.cluster} on {platform.name} port {PORT} did not '
                        f'accept connections within {timeout_s:.0f} s; see `pg_lsclusters` and '
                        'the cluster log in the container')
        time.sleep(1)


@pytest.fixture
def running_cluster_afterwards(host: Any, platform: Platform) -> Iterator[None]:
    """Whatever the test did, the cluster runs again when it ends, for the next test."""
    yield
    if not cluster_state(host)['running']:
        host.run(f'pg_ctlcluster {platform.postgresql_major} {CLUSTER} start')
    wait_until_ready(host, platform)
