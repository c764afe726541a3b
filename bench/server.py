"""The bench's PostgreSQL: a throwaway cluster with server defaults and the role's real schema.

The cluster comes from the tests' ThrowawayCluster (initdb in a temporary directory, owned by
the `postgres` OS user when run as root). It is started here with the server's own defaults,
fsync included, because the tests' start turns fsync off and logs every statement: both would
flatter or burden some loaders more than others.

Every loader reaches the server the same way: TCP on 127.0.0.1 with a password (SCRAM), as in
the measurements the goals were set against. Set-up work uses the Unix socket.
"""

from __future__ import annotations

import os
import pathlib
import secrets
import subprocess
import sys
from typing import Any

import jinja2
import psycopg2

REPO = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / 'tests'))

from conftest import SUPERUSER, ThrowawayCluster  # noqa: E402

MIGRATIONS = REPO / 'roles' / 'postgres_hr' / 'templates' / 'migrations'


def migration_files() -> list[pathlib.Path]:
    """Every migration the role applies, in version order: the table every loader fills."""
    return sorted(MIGRATIONS.glob('[0-9][0-9][0-9]_*.sql.j2'))


def schema_sql(schema: str = 'public') -> str:
    """The migrations rendered with the role's variable, as one script."""
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return '\n'.join(env.from_string(path.read_text()).render(postgres_hr_schema=schema)
                     for path in migration_files())


class BenchServer:
    """One throwaway cluster for the whole bench, so every loader meets the same server."""

    def __init__(self) -> None:
        self.cluster = ThrowawayCluster().init()
        self.password = secrets.token_urlsafe(18)

    def start(self) -> 'BenchServer':
        cluster = self.cluster
        options = '-c port=%d -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s' % (
            cluster.port, cluster.socket_dir)
        cluster._run(str(cluster.bindir / 'pg_ctl'), '-D', str(cluster.datadir), '-l',
                     str(cluster.logfile), '-o', options, '-w', 'start')
        self.execute('ALTER ROLE %s PASSWORD %%s' % SUPERUSER, args=(self.password,))
        return self

    def destroy(self) -> None:
        self.cluster.destroy()

    @property
    def port(self) -> int:
        return self.cluster.port

    def connect(self, db: str = 'postgres', **kwargs: Any):
        return self.cluster.connect(db, **kwargs)

    def execute(self, sql: str, db: str = 'postgres', args: Any = None) -> list[tuple]:
        """One statement in autocommit mode (CREATE DATABASE and CHECKPOINT need it)."""
        conn = self.connect(db)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def create_database(self, name: str) -> None:
        """A new database holding the migrated, empty employees table."""
        self.execute('CREATE DATABASE "%s"' % name)
        conn = self.connect(name)
        try:
            with conn, conn.cursor() as cur:
                cur.execute(schema_sql())
        finally:
            conn.close()

    def drop_database(self, name: str) -> None:
        self.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)

    def checkpoint(self) -> None:
        """Write out the previous run's WAL, so no checkpoint lands inside the next timing."""
        self.execute('CHECKPOINT')

    def indexes(self, db: str) -> list[str]:
        return [row[0] for row in self.execute(
            "SELECT indexrelid::regclass::text FROM pg_index "
            "WHERE indrelid = 'employees'::regclass ORDER BY 1", db)]

    def version(self) -> str:
        return self.execute('SHOW server_version')[0][0]

    def module_login(self, db: str) -> dict[str, Any]:
        return dict(login_host='127.0.0.1', login_port=self.port, login_user=SUPERUSER,
                    login_password=self.password, db=db)

    def psql(self, db: str, command: str) -> subprocess.CompletedProcess:
        """psql over TCP; the password travels in the environment, never in arguments."""
        return subprocess.run(
            [str(self.cluster.bindir / 'psql'), '-X', '-q', '-v', 'ON_ERROR_STOP=1',
             '-h', '127.0.0.1', '-p', str(self.port), '-U', SUPERUSER, '-d', db,
             '-c', command], check=True, capture_output=True, text=True,
            env=dict(os.environ, PGPASSWORD=self.password))

    def tcp_connect(self, db: str, user: str = SUPERUSER, password: str | None = None):
        return psycopg2.connect(dbname=db, user=user, password=password or self.password,
                                host='127.0.0.1', port=self.port)
