"""Fixtures for the molecule verify step: the converged containers and SQL run inside them.

Every test runs once per platform of molecule.yml. Containers are reached with testinfra's
podman:// backend (`podman exec`), measured about 15 times faster than its ansible backend.
SQL runs inside the containers with psql, which the role installs:

- `superuser_sql` as the postgres OS user over the Unix socket (peer authentication), to see
  the catalog as the role left it;
- `readonly_sql` as the read-only role over TCP to 127.0.0.1 with its vault password, as the
  query application connects. The password reaches psql as PGPASSWORD in the environment of
  `podman exec --env PGPASSWORD`, so it is on no command line, in no process list and no log.
"""

from __future__ import annotations

import os
import pathlib
import shlex
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

import pytest
import testinfra
import yaml
from ansible.parsing.vault import VaultLib, VaultSecret

# The role's public contract, as the tests expect it (the role's defaults; converge.yml
# overrides none of them).
DATABASE = 'hr_db'
PORT = 5432
CLUSTER = 'main'
OWNER_ROLE = 'hr_owner'
READONLY_ROLE = 'query_app_readonly'
HISTORY_TABLE = 'postgres_hr_schema_history'
# PostgreSQL major version of Debian's `postgresql` package, by Debian major version.
DEBIAN_POSTGRESQL_MAJOR = {'12': 15, '13': 17}

SCENARIO_DIR = pathlib.Path(__file__).resolve().parent.parent
READY_TIMEOUT_S = 60

# psql and podman helpers shared with the other scenarios' verify steps.
sys.path.insert(0, str(SCENARIO_DIR.parent / 'shared'))
from podman_psql import PSQL_OPTIONS, PsqlResult, podman  # noqa: E402,F401


@dataclass
class Platform:
    """One molecule platform: its container and what the role should have made there."""

    name: str
    debian_major: str
    systemd: bool

    @property
    def postgresql_major(self) -> int:
        return DEBIAN_POSTGRESQL_MAJOR[self.debian_major]

    @property
    def service(self) -> str:
        return f'postgresql@{self.postgresql_major}-{CLUSTER}'


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        'markers', 'restarts: restarts the server or the container; runs after all other tests')


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Restarts run last, so a server that does not come back fails its own test and not a
    # random later one.
    items.sort(key=lambda item: item.get_closest_marker('restarts') is not None)


def molecule_platforms() -> list[str]:
    """Names of the platforms in this run's molecule.yml (MOLECULE_FILE, set by molecule)."""
    molecule_file = os.environ.get('MOLECULE_FILE', str(SCENARIO_DIR / 'molecule.yml'))
    with open(molecule_file, encoding='utf-8') as stream:
        return [platform['name'] for platform in yaml.safe_load(stream)['platforms']]


@pytest.fixture(scope='module', params=molecule_platforms())
def platform(request: pytest.FixtureRequest) -> Platform:
    name = request.param
    root = testinfra.get_host(f'podman://{name}')
    if root.run('true').rc != 0:
        pytest.fail(f'container {name} does not answer `podman exec`; '
                    'run `molecule converge` (or scripts/run-molecule) first')
    pid1 = root.file('/proc/1/comm').content_string.strip()
    return Platform(name=name, debian_major=root.system_info.release.split('.')[0],
                    systemd=pid1 == 'systemd')


@pytest.fixture(scope='module')
def host(platform: Platform) -> Any:
    """The container as root."""
    return testinfra.get_host(f'podman://{platform.name}')


@pytest.fixture(scope='module')
def postgres_host(platform: Platform) -> Any:
    """The container as the postgres OS user, the cluster's peer-authenticated superuser."""
    return testinfra.get_host(f'podman://postgres@{platform.name}')


class Secret(str):
    """A password that failure reports show as '<secret>'.

    pytest's long tracebacks print the arguments of every function they pass through, the
    tests' fixtures included; psql and the environment still get the real value.
    """

    def __repr__(self) -> str:
        return "'<secret>'"


@pytest.fixture(scope='session')
def readonly_password() -> str:
    """The read-only role's password from this run's vault (see ../vault-password)."""
    ephemeral = os.environ.get('MOLECULE_EPHEMERAL_DIRECTORY')
    if not ephemeral:
        pytest.fail('MOLECULE_EPHEMERAL_DIRECTORY is unset: run the tests with `molecule verify`, '
                    'which also provides the vault of the converged run')
    vault_dir = pathlib.Path(ephemeral) / 'vault'
    secret = VaultSecret((vault_dir / 'password').read_bytes().strip())
    plaintext = VaultLib([('default', secret)]).decrypt((vault_dir / 'vars.yml').read_bytes())
    return Secret(yaml.safe_load(plaintext)['vault_postgres_hr_readonly_password'])


@pytest.fixture(scope='module')
def superuser_sql(postgres_host: Any) -> Callable[..., PsqlResult]:
    """Run SQL as the postgres superuser; fails the test on an SQL error unless check=False."""

    def run(sql: str, database: str = DATABASE, check: bool = True) -> PsqlResult:
        out = postgres_host.run(
            shlex.join(['psql', '-p', str(PORT), '-d', database, *PSQL_OPTIONS, '-c', sql]))
        result = PsqlResult(out.rc, out.stdout, out.stderr)
        if check and result.rc != 0:
            pytest.fail(f'psql as postgres on {postgres_host.backend.name} port {PORT} database '
                        f'{database} failed (rc {result.rc}) for: {sql}\n{result.stderr}')
        return result

    return run


def run_readonly_psql(container: str, password: str, sql: str,
                      user: str = READONLY_ROLE) -> PsqlResult:
    """Run SQL over TCP to 127.0.0.1 as `user`, the password passed only in the environment."""
    conninfo = f'host=127.0.0.1 port={PORT} dbname={DATABASE} user={user} connect_timeout=10'
    env = dict(os.environ, PGPASSWORD=password)
    out = podman('exec', '--env', 'PGPASSWORD', container, 'psql', conninfo, *PSQL_OPTIONS,
                 '-c', sql, env=env)
    return PsqlResult(out.returncode, out.stdout, out.stderr)


@pytest.fixture(scope='module')
def readonly_sql(platform: Platform, readonly_password: str) -> Callable[..., PsqlResult]:
    """Run SQL as the read-only role; returns failures for the test to inspect."""

    def run(sql: str) -> PsqlResult:
        return run_readonly_psql(platform.name, readonly_password, sql)

    return run


def wait_until_ready(host: Any, platform: Platform, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Block until the cluster accepts connections, or fail the test.

    Under systemd the unit must be active too: pg_ctlcluster's server accepts connections a
    moment before systemd marks the unit started.
    """
    checks = [f'pg_isready -q -h /var/run/postgresql -p {PORT}']
    if platform.systemd:
        checks.insert(0, f'systemctl is-active --quiet {platform.service}')
    command = ' && '.join(checks)
    deadline = time.monotonic() + timeout_s
    while host.run(command).rc != 0:
        if time.monotonic() > deadline:
            pytest.fail(f'PostgreSQL {platform.postgresql_major}/{CLUSTER} on {platform.name} '
                        f'port {PORT} was not ready within {timeout_s:.0f} s ({command}); see '
                        f'`pg_lsclusters` and the cluster log in the container')
        time.sleep(1)
