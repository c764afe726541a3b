"""Fixtures for the module tests: a real, throwaway PostgreSQL cluster and a module runner.

The cluster is made with initdb in a temporary directory and started with pg_ctl on a free
loopback port; the system's own cluster is never touched. Tests get a fresh database each, so
they can run in any order.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import pathlib
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from typing import Any, Iterator

import psycopg2
import pytest

REPO = pathlib.Path(__file__).resolve().parent.parent
RUNNER = REPO / 'tests' / 'module_runner.py'
SUPERUSER = 'postgres'


def pg_bindir() -> pathlib.Path:
    """PG_BINDIR if set, else the newest server Debian installed."""
    if os.environ.get('PG_BINDIR'):
        return pathlib.Path(os.environ['PG_BINDIR'])
    candidates = sorted(glob.glob('/usr/lib/postgresql/*/bin/initdb'),
                        key=lambda p: int(p.split('/')[4]))
    if not candidates:
        pytest.exit('No PostgreSQL server binaries under /usr/lib/postgresql; '
                    'install the postgresql package (make test does).', returncode=3)
    return pathlib.Path(candidates[-1]).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


class ThrowawayCluster:
    """One PostgreSQL cluster in a temporary directory, owned by an unprivileged OS user.

    initdb refuses to run as root, so as root the cluster belongs to the `postgres` OS user.
    """

    def __init__(self, port: int | None = None) -> None:
        self.bindir = pg_bindir()
        self.port = port or free_port()
        self.root = pathlib.Path(tempfile.mkdtemp(prefix='postgres_hr_test_'))
        self.datadir = self.root / 'data'
        self.socket_dir = self.root / 'socket'
        self.logfile = self.root / 'server.log'
        self.os_user = 'postgres' if os.geteuid() == 0 else None
        self.socket_dir.mkdir()
        if self.os_user:
            entry = pwd.getpwnam(self.os_user)
            for path in (self.root, self.socket_dir):
                os.chown(path, entry.pw_uid, entry.pw_gid)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(args, check=check, user=self.os_user, capture_output=True,
                              text=True, cwd=self.root)

    def init(self) -> 'ThrowawayCluster':
        # Local socket connections are trusted (the tests' superuser); TCP needs SCRAM, as on a
        # real host, so password handling is exercised for real.
        self._run(str(self.bindir / 'initdb'), '-D', str(self.datadir), '-U', SUPERUSER,
                  '--auth-local=trust', '--auth-host=scram-sha-256', '-E', 'UTF8',
                  '--locale=C.UTF-8')
        return self

    def start(self, wait: bool = True) -> 'ThrowawayCluster':
        options = ("-c port=%d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s "
                   "-c fsync=off -c log_statement=all" % (self.port, self.socket_dir))
        args = [str(self.bindir / 'pg_ctl'), '-D', str(self.datadir), '-l', str(self.logfile),
                '-o', options, 'start']
        if wait:
            args.insert(-1, '-w')
        else:
            args.insert(-1, '-W')
        self._run(*args)
        return self

    def stop(self) -> None:
        self._run(str(self.bindir / 'pg_ctl'), '-D', str(self.datadir), '-m', 'fast', '-w',
                  'stop', check=False)

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def server_log(self) -> str:
        return self.logfile.read_text() if self.logfile.exists() else ''

    def connect(self, dbname: str = 'postgres', **kwargs: Any):
        return psycopg2.connect(dbname=dbname, user=SUPERUSER, host=str(self.socket_dir),
                                port=self.port, **kwargs)

    def login_args(self, db: str, **overrides: Any) -> dict[str, Any]:
        """Connection options for a module, as the superuser over the local socket."""
        args = dict(login_unix_socket=str(self.socket_dir), login_port=self.port,
                    login_user=SUPERUSER, db=db)
        args.update(overrides)
        return args


@pytest.fixture(scope='session')
def pg_cluster() -> Iterator[ThrowawayCluster]:
    cluster = ThrowawayCluster().init().start()
    yield cluster
    cluster.destroy()


@contextlib.contextmanager
def scratch_database(cluster: ThrowawayCluster) -> Iterator[str]:
    """A new, empty database with a random name, dropped on exit."""
    name = 'test_' + uuid.uuid4().hex[:12]
    conn = cluster.connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute('CREATE DATABASE "%s"' % name)
    try:
        yield name
    finally:
        with conn.cursor() as cur:
            cur.execute('DROP DATABASE "%s" WITH (FORCE)' % name)
        conn.close()


@pytest.fixture
def database(pg_cluster: ThrowawayCluster) -> Iterator[str]:
    """A new, empty database for one test, dropped afterwards."""
    with scratch_database(pg_cluster) as name:
        yield name


class ModuleResult(dict):
    """A module's JSON result, plus how the process ended."""

    @property
    def failed(self) -> bool:
        return bool(self.get('failed'))


def run_module(name: str, args: dict[str, Any], check_mode: bool = False,
               diff: bool = False, timeout: float = 300) -> ModuleResult:
    """Run library/<name>.py in a child process, as Ansible would, and return its result."""
    payload = dict(args)
    payload['_ansible_check_mode'] = check_mode
    payload['_ansible_diff'] = diff
    proc = subprocess.run([sys.executable, str(RUNNER), str(REPO / 'library' / (name + '.py'))],
                          input=json.dumps(payload), capture_output=True, text=True,
                          timeout=timeout)
    try:
        result = ModuleResult(json.loads(proc.stdout))
    except json.JSONDecodeError:
        raise AssertionError('module %s printed no JSON (exit %d)\nstdout: %s\nstderr: %s' % (
            name, proc.returncode, proc.stdout, proc.stderr))
    return result


def start_module(name: str, args: dict[str, Any]) -> subprocess.Popen:
    """Start a module without waiting, for tests of concurrent runs."""
    proc = subprocess.Popen([sys.executable, str(RUNNER), str(REPO / 'library' / (name + '.py'))],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdin.write(json.dumps(dict(args, _ansible_check_mode=False, _ansible_diff=False)))
    proc.stdin.close()
    return proc


def load_module_utils(name: str = 'postgres_hr_db'):
    """Import a file of module_utils/ directly, for tests of its functions."""
    import importlib.util
    path = REPO / 'module_utils' / (name + '.py')
    spec = importlib.util.spec_from_file_location(name, path)
    lib = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(lib)
    return lib
