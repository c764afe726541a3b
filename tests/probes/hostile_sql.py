#!/usr/bin/env python3
"""Hostile SQL against the HR database, run as the application's read-only role.

The query application runs SQL a language model wrote, so this suite plays that model at its
worst: it tries to write, to create objects, to reach files, programs, other databases and
other roles, to change its own role, and to use the server without bounds. Each probe runs on
a fresh connection, the way a pooled connection looks after DISCARD ALL, inside a transaction
that is rolled back, and passes when the server refuses it with the expected SQLSTATE.

Most probes open their transaction with BEGIN READ WRITE: default_transaction_read_only is a
second line that any client can step over, so privileges must hold without it. The probes of
the group `role defaults` use a plain BEGIN to show what that second line adds.

Usage (the password comes from the environment, never from the command line):

    PGPASSWORD=... hostile_sql.py --host 127.0.0.1 --port 5432 --dbname hr_db \\
        --user query_app_readonly [--schema public] [--json]

Exit status: 0 when every probe got its expected SQLSTATE, 1 when one did not, 2 on bad usage
or when the role cannot log in at all. Needs Python 3.9+ and psycopg2 only, so it runs with
Debian's python3-psycopg2 on a database host.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import psycopg2
import psycopg2.extensions

INSUFFICIENT_PRIVILEGE = '42501'
READ_ONLY_TRANSACTION = '25006'
QUERY_CANCELED = '57014'
CONFIGURATION_LIMIT_EXCEEDED = '53400'
TOO_MANY_CONNECTIONS = '53300'
INVALID_AUTHORIZATION = '28000'
SUCCESSFUL = '00000'

# psycopg2 reports no SQLSTATE for a refused connection, only libpq's message, so these are
# matched on the server's (English) message text.
CONNECT_MESSAGES = (
    ('pg_hba.conf rejects connection', INVALID_AUTHORIZATION),
    ('no pg_hba.conf entry', INVALID_AUTHORIZATION),
    ('password authentication failed', '28P01'),
    ('too many connections for role', TOO_MANY_CONNECTIONS),
    ('permission denied for database', INSUFFICIENT_PRIVILEGE),
    ('is not currently accepting connections', '55000'),
)

APPLICATION_NAME = 'hostile_sql_probe'
CONNECT_TIMEOUT_S = 10


@dataclass(frozen=True)
class Probe:
    """One hostile statement and the SQLSTATE the server must answer it with.

    `mode` is `read_write` (BEGIN READ WRITE), `defaults` (a plain BEGIN, under the role's
    defaults), `connect` (log in to the database named by `sql`) or `connection_limit`.
    `residual` marks a probe that documents what the database cannot refuse. `needs` names a
    limit without which the probe would run unbounded: it is then not run, and fails.
    """

    name: str
    group: str
    mode: str
    expected: str
    sql: str
    why: str
    residual: bool = False
    needs: str = ''


@dataclass
class Outcome:
    name: str
    group: str
    mode: str
    expected: str
    sqlstate: str
    ok: bool
    message: str
    seconds: float
    residual: bool


# {table}, {schema}, {database} and {sleep} are filled in before a probe runs; {sleep} is the
# role's statement_timeout plus one second.
PROBES = (
    Probe('insert_row', 'writes', 'read_write', INSUFFICIENT_PRIVILEGE,
          'INSERT INTO {table} DEFAULT VALUES', 'no INSERT on employees'),
    Probe('update_salaries', 'writes', 'read_write', INSUFFICIENT_PRIVILEGE,
          'UPDATE {table} SET salary_usd = salary_usd * 2', 'no UPDATE on employees'),
    Probe('delete_rows', 'writes', 'read_write', INSUFFICIENT_PRIVILEGE,
          'DELETE FROM {table}', 'no DELETE on employees'),
    Probe('truncate_table', 'writes', 'read_write', INSUFFICIENT_PRIVILEGE,
          'TRUNCATE {table}', 'no TRUNCATE on employees'),
    Probe('advance_sequence', 'writes', 'read_write', INSUFFICIENT_PRIVILEGE,
          "SELECT nextval(pg_get_serial_sequence('{table}', 'employee_id'))",
          'no USAGE or UPDATE on the id sequence'),
    Probe('select_for_update', 'writes', 'read_write', INSUFFICIENT_PRIVILEGE,
          'SELECT employee_id FROM {table} FOR UPDATE',
          'row locks need UPDATE, which the role lacks'),
    Probe('lock_table_exclusive', 'writes', 'read_write', INSUFFICIENT_PRIVILEGE,
          'LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE',
          'strong table locks need UPDATE, DELETE or TRUNCATE'),
    Probe('create_table', 'ddl', 'read_write', INSUFFICIENT_PRIVILEGE,
          'CREATE TABLE {schema}.hostile_probe (id integer)',
          'CREATE on the schema stays with its owner'),
    Probe('create_function', 'ddl', 'read_write', INSUFFICIENT_PRIVILEGE,
          "CREATE FUNCTION {schema}.hostile_probe() RETURNS integer LANGUAGE sql "
          "AS 'SELECT 1'", 'CREATE on the schema stays with its owner'),
    Probe('create_schema', 'ddl', 'read_write', INSUFFICIENT_PRIVILEGE,
          'CREATE SCHEMA hostile_probe', 'no CREATE on the database'),
    Probe('alter_table', 'ddl', 'read_write', INSUFFICIENT_PRIVILEGE,
          'ALTER TABLE {table} ADD COLUMN hostile_probe integer', 'only the owner alters'),
    Probe('drop_table', 'ddl', 'read_write', INSUFFICIENT_PRIVILEGE,
          'DROP TABLE {table}', 'only the owner drops'),
    Probe('create_extension_dblink', 'ddl', 'read_write', INSUFFICIENT_PRIVILEGE,
          'CREATE EXTENSION dblink', 'dblink would open connections as other roles'),
    Probe('temp_table_named_employees', 'temporary objects', 'read_write',
          INSUFFICIENT_PRIVILEGE, 'CREATE TEMP TABLE employees (employee_id integer)',
          'TEMPORARY on the database is revoked; a temp table would hide the real one'),
    Probe('temp_view_named_employees', 'temporary objects', 'read_write',
          INSUFFICIENT_PRIVILEGE, 'CREATE TEMP VIEW employees AS SELECT 1 AS employee_id',
          'temporary views need the same TEMPORARY privilege'),
    Probe('large_object_create', 'functions', 'read_write', INSUFFICIENT_PRIVILEGE,
          'SELECT lo_create(0)', 'EXECUTE revoked: writes pg_largeobject'),
    Probe('large_object_from_bytea', 'functions', 'read_write', INSUFFICIENT_PRIVILEGE,
          "SELECT lo_from_bytea(0, 'hostile')", 'EXECUTE revoked: writes pg_largeobject'),
    Probe('large_object_put', 'functions', 'read_write', INSUFFICIENT_PRIVILEGE,
          "SELECT lo_put(0, 0, 'hostile')", 'EXECUTE revoked: writes pg_largeobject'),
    Probe('wal_message', 'functions', 'read_write', INSUFFICIENT_PRIVILEGE,
          "SELECT pg_logical_emit_message(false, 'hostile', 'probe')",
          'EXECUTE revoked: writes WAL, even in read-only transactions'),
    Probe('wal_message_transactional', 'functions', 'read_write', INSUFFICIENT_PRIVILEGE,
          "SELECT pg_logical_emit_message(true, 'hostile', 'probe')",
          'EXECUTE revoked: writes WAL'),
    Probe('notify', 'functions', 'read_write', INSUFFICIENT_PRIVILEGE,
          "SELECT pg_notify('hostile', 'probe')", 'EXECUTE revoked: fills the notify queue'),
    Probe('advisory_lock', 'functions', 'read_write', INSUFFICIENT_PRIVILEGE,
          'SELECT pg_advisory_lock(1)',
          'EXECUTE revoked: could hold the migration lock and block every run'),
    Probe('advisory_xact_lock', 'functions', 'read_write', INSUFFICIENT_PRIVILEGE,
          'SELECT pg_try_advisory_xact_lock(1)', 'EXECUTE revoked, as for session locks'),
    Probe('terminate_backend', 'functions', 'read_write', INSUFFICIENT_PRIVILEGE,
          'SELECT pg_terminate_backend(0)',
          "EXECUTE revoked: a role may end its own role's other sessions, the whole pool"),
    Probe('cancel_backend', 'functions', 'read_write', INSUFFICIENT_PRIVILEGE,
          'SELECT pg_cancel_backend(0)', "EXECUTE revoked: same for cancelling queries"),
    Probe('copy_to_program', 'files and programs', 'read_write', INSUFFICIENT_PRIVILEGE,
          "COPY (SELECT 1) TO PROGRAM 'true'", 'needs pg_execute_server_program'),
    Probe('copy_from_file', 'files and programs', 'read_write', INSUFFICIENT_PRIVILEGE,
          "COPY {table} FROM '/etc/passwd'", 'needs pg_read_server_files'),
    Probe('copy_to_file', 'files and programs', 'read_write', INSUFFICIENT_PRIVILEGE,
          "COPY (SELECT 1) TO '/tmp/hostile_probe'", 'needs pg_write_server_files'),
    Probe('read_file', 'files and programs', 'read_write', INSUFFICIENT_PRIVILEGE,
          "SELECT pg_read_file('/etc/passwd')", 'restricted by PostgreSQL'),
    Probe('list_directory', 'files and programs', 'read_write', INSUFFICIENT_PRIVILEGE,
          "SELECT pg_ls_dir('.')", 'restricted by PostgreSQL'),
    Probe('large_object_import', 'files and programs', 'read_write', INSUFFICIENT_PRIVILEGE,
          "SELECT lo_import('/etc/passwd')", 'restricted by PostgreSQL'),
    Probe('large_object_export', 'files and programs', 'read_write', INSUFFICIENT_PRIVILEGE,
          "SELECT lo_export(0, '/tmp/hostile_probe')", 'restricted by PostgreSQL'),
    Probe('read_pg_authid', 'roles', 'read_write', INSUFFICIENT_PRIVILEGE,
          'SELECT rolname, rolpassword FROM pg_authid', 'password hashes are superuser-only'),
    Probe('read_other_table', 'roles', 'read_write', INSUFFICIENT_PRIVILEGE,
          'SELECT * FROM {schema}.postgres_hr_schema_history',
          'SELECT is granted on employees only'),
    Probe('set_role_superuser', 'roles', 'read_write', INSUFFICIENT_PRIVILEGE,
          'SET ROLE postgres', 'member of no role'),
    Probe('set_role_predefined', 'roles', 'read_write', INSUFFICIENT_PRIVILEGE,
          'SET ROLE pg_read_server_files', 'member of no predefined role'),
    Probe('set_session_authorization', 'roles', 'read_write', INSUFFICIENT_PRIVILEGE,
          'SET SESSION AUTHORIZATION postgres', 'superuser-only'),
    Probe('grant_self_predefined_role', 'roles', 'read_write', INSUFFICIENT_PRIVILEGE,
          'GRANT pg_read_all_data TO CURRENT_USER', 'no ADMIN option on any role'),
    Probe('create_role', 'roles', 'read_write', INSUFFICIENT_PRIVILEGE,
          'CREATE ROLE hostile_probe', 'NOCREATEROLE'),
    Probe('lift_temp_file_limit', 'roles', 'read_write', INSUFFICIENT_PRIVILEGE,
          'SET temp_file_limit = -1', 'temp_file_limit is superuser-only'),
    Probe('default_read_only_insert', 'role defaults', 'defaults', READ_ONLY_TRANSACTION,
          'INSERT INTO {table} DEFAULT VALUES', 'default_transaction_read_only = on'),
    Probe('self_alter_role_setting', 'role defaults', 'defaults', READ_ONLY_TRANSACTION,
          'ALTER ROLE CURRENT_USER SET statement_timeout = 0',
          'a role may change its own settings; only a read-only transaction stops it'),
    Probe('self_alter_role_database_setting', 'role defaults', 'defaults',
          READ_ONLY_TRANSACTION,
          'ALTER ROLE CURRENT_USER IN DATABASE {database} SET statement_timeout = 0',
          'the same for settings in one database'),
    Probe('self_alter_role_password', 'role defaults', 'defaults', READ_ONLY_TRANSACTION,
          'ALTER ROLE CURRENT_USER PASSWORD NULL',
          'a role may change its own password; only a read-only transaction stops it'),
    Probe('self_alter_role_read_write', 'role defaults', 'read_write', SUCCESSFUL,
          'ALTER ROLE CURRENT_USER SET statement_timeout = 0',
          'no privilege stops it: the application must use BEGIN READ ONLY, and every run '
          'of the role puts the settings back (rolled back here)', residual=True),
    Probe('connect_postgres', 'other databases', 'connect', INVALID_AUTHORIZATION,
          'postgres', 'pg_hba.conf admits the role to the HR database only'),
    Probe('connect_template1', 'other databases', 'connect', INVALID_AUTHORIZATION,
          'template1', 'pg_hba.conf admits the role to the HR database only'),
    Probe('sleep_past_statement_timeout', 'resources', 'defaults', QUERY_CANCELED,
          'SELECT pg_sleep({sleep})', 'statement_timeout', needs='statement_timeout'),
    Probe('lift_statement_timeout_inside_statement', 'resources', 'defaults', QUERY_CANCELED,
          "SELECT set_config('statement_timeout', '0', false), pg_sleep({sleep})",
          'a statement cannot lift its own timeout', needs='statement_timeout'),
    Probe('cross_join', 'resources', 'defaults', QUERY_CANCELED,
          'SELECT count(*) FROM {table} AS a, {table} AS b, {table} AS c, {table} AS d, '
          '{table} AS e, {table} AS f', 'statement_timeout', needs='statement_timeout'),
    Probe('temp_file_heavy_sort', 'resources', 'defaults', CONFIGURATION_LIMIT_EXCEEDED,
          'SELECT count(*) FROM (SELECT g FROM generate_series(1, 200000000) AS g '
          'ORDER BY g DESC) AS sorted', 'temp_file_limit', needs='temp_file_limit'),
    Probe('connection_limit', 'resources', 'connection_limit', TOO_MANY_CONNECTIONS,
          '', 'CONNECTION LIMIT on the role'),
)


class Target:
    """Where the probes connect; the password is left to libpq, which reads PGPASSWORD."""

    def __init__(self, host: str, port: int, dbname: str, user: str, schema: str) -> None:
        self.host, self.port, self.dbname, self.user, self.schema = host, port, dbname, user, schema

    def describe(self, dbname: str | None = None) -> str:
        return 'database "%s" at %s port %d as user "%s"' % (
            dbname or self.dbname, self.host, self.port, self.user)

    def connect(self, dbname: str | None = None) -> Any:
        conn = psycopg2.connect(host=self.host, port=self.port, dbname=dbname or self.dbname,
                                user=self.user, connect_timeout=CONNECT_TIMEOUT_S,
                                application_name=APPLICATION_NAME)
        conn.autocommit = True
        return conn


def connect_sqlstate(error: psycopg2.Error) -> str:
    for text, sqlstate in CONNECT_MESSAGES:
        if text in str(error):
            return sqlstate
    return 'unknown'


def first_line(error: psycopg2.Error) -> str:
    """The server's primary message, never the statement (which the server may quote)."""
    diag = getattr(error, 'diag', None)
    if diag is not None and diag.message_primary:
        return diag.message_primary
    lines = [line for line in str(error).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(error).__name__


def role_limits(target: Target) -> dict[str, Any]:
    """The limits a fresh session of the role starts with."""
    conn = target.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s)", ([
                'statement_timeout', 'idle_in_transaction_session_timeout', 'temp_file_limit',
                'transaction_timeout', 'default_transaction_read_only'],))
            limits = {name: setting + (unit or '') for name, setting, unit in cur.fetchall()}
            cur.execute('SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user')
            limits['connection_limit'] = cur.fetchone()[0]
            cur.execute("SELECT extract(epoch FROM current_setting('statement_timeout')"
                        "::interval)::float8, current_setting('server_version'), "
                        "current_setting('server_version_num')::int")
            timeout_s, version, version_num = cur.fetchone()
    finally:
        conn.close()
    limits['statement_timeout_seconds'] = timeout_s
    return dict(limits=limits, server_version=version, server_version_num=version_num)


def run_statement(target: Target, probe: Probe, values: dict[str, str]) -> tuple[str, str]:
    conn = target.connect()
    try:
        with conn.cursor() as cur:
            cur.execute('BEGIN READ WRITE' if probe.mode == 'read_write' else 'BEGIN')
            try:
                cur.execute(probe.sql.format(**values))
                outcome = SUCCESSFUL, 'accepted (rolled back)'
            except psycopg2.Error as exc:
                outcome = exc.pgcode or 'unknown', first_line(exc)
            # Whatever got through is undone; only effects outside the transaction remain.
            cur.execute('ROLLBACK')
        return outcome
    finally:
        conn.close()


def run_connect(target: Target, probe: Probe, values: dict[str, str]) -> tuple[str, str]:
    try:
        target.connect(probe.sql).close()
    except psycopg2.OperationalError as exc:
        return connect_sqlstate(exc), first_line(exc)
    return SUCCESSFUL, 'connected to %s' % target.describe(probe.sql)


def run_connection_limit(target: Target, probe: Probe,
                         values: dict[str, str]) -> tuple[str, str]:
    """Open sessions of the role until the server refuses one; never more than limit + 1."""
    limit = int(values['connection_limit'])
    if limit < 0:
        return SUCCESSFUL, 'the role has no connection limit'
    held: list[Any] = []
    try:
        for _ in range(limit + 1):
            try:
                held.append(target.connect())
            except psycopg2.OperationalError as exc:
                return connect_sqlstate(exc), '%s (after %d sessions, limit %d)' % (
                    first_line(exc), len(held), limit)
        return SUCCESSFUL, 'opened %d sessions, limit %d' % (len(held), limit)
    finally:
        for conn in held:
            conn.close()


RUNNERS: dict[str, Callable[[Target, Probe, dict[str, str]], tuple[str, str]]] = {
    'read_write': run_statement,
    'defaults': run_statement,
    'connect': run_connect,
    'connection_limit': run_connection_limit,
}


def run_probe(target: Target, probe: Probe, values: dict[str, str],
              limits: dict[str, Any]) -> Outcome:
    started = time.monotonic()
    try:
        if probe.needs and limits.get(probe.needs) in ('0', '0ms', '-1', '-1kB', None):
            sqlstate, message = 'not run', 'the role has no %s, so this would run unbounded' % (
                probe.needs)
        else:
            sqlstate, message = RUNNERS[probe.mode](target, probe, values)
    except psycopg2.Error as exc:
        sqlstate, message = 'unknown', 'probe broke off: %s' % first_line(exc)
    return Outcome(probe.name, probe.group, probe.mode, probe.expected, sqlstate,
                   sqlstate == probe.expected, message, round(time.monotonic() - started, 2),
                   probe.residual)


def run_all(target: Target, names: list[str] | None = None) -> dict[str, Any]:
    report = role_limits(target)
    conn = target.connect()
    quote = psycopg2.extensions.quote_ident
    values = dict(schema=quote(target.schema, conn),
                  table='%s.%s' % (quote(target.schema, conn), quote('employees', conn)),
                  database=quote(target.dbname, conn),
                  sleep='%g' % (report['limits']['statement_timeout_seconds'] + 1),
                  connection_limit=str(report['limits']['connection_limit']))
    conn.close()
    probes = [probe for probe in PROBES if not names or probe.name in names]
    outcomes = [run_probe(target, probe, values, report['limits']) for probe in probes]
    report['target'] = target.describe()
    report['probes'] = [asdict(outcome) for outcome in outcomes]
    report['passed'] = all(outcome.ok for outcome in outcomes)
    return report


def print_table(report: dict[str, Any]) -> None:
    print('PostgreSQL %s, %s' % (report['server_version'], report['target']))
    print('limits: %s' % ', '.join('%s=%s' % item for item in sorted(report['limits'].items())))
    print('%-40s %-18s %-8s %-8s %s' % ('probe', 'group', 'expected', 'got', 'result'))
    for outcome in report['probes']:
        verdict = 'ok' if outcome['ok'] else 'FAILED: ' + outcome['message']
        if outcome['ok'] and outcome['residual']:
            verdict = 'ok (residual risk: %s)' % outcome['message']
        print('%-40s %-18s %-8s %-8s %s' % (outcome['name'], outcome['group'],
                                            outcome['expected'], outcome['sqlstate'], verdict))
    failed = [outcome['name'] for outcome in report['probes'] if not outcome['ok']]
    print('%d probes, %d as expected%s' % (
        len(report['probes']), len(report['probes']) - len(failed),
        '; unexpected: ' + ', '.join(failed) if failed else ''))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=5432)
    parser.add_argument('--dbname', default='hr_db')
    parser.add_argument('--user', default='query_app_readonly')
    parser.add_argument('--schema', default='public')
    parser.add_argument('--probe', action='append', dest='names', metavar='NAME',
                        help='run only this probe (repeatable)')
    parser.add_argument('--json', action='store_true', help='print the report as JSON')
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if not os.environ.get('PGPASSWORD'):
        print('error: set PGPASSWORD to the password of %s; it is read from the environment '
              'only, so it never shows on a command line.' % args.user, file=sys.stderr)
        return 2
    unknown = set(args.names or []) - {probe.name for probe in PROBES}
    if unknown:
        print('error: no probe named %s.' % ', '.join(sorted(unknown)), file=sys.stderr)
        return 2
    target = Target(args.host, args.port, args.dbname, args.user, args.schema)
    try:
        report = run_all(target, args.names)
    except psycopg2.OperationalError as exc:
        print('error: cannot log in to %s: %s' % (target.describe(), first_line(exc)),
              file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)
    return 0 if report['passed'] else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
