#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Apply versioned, already-rendered SQL migrations to a PostgreSQL database."""

from __future__ import annotations

DOCUMENTATION = r'''
---
module: postgres_hr_migrate
short_description: Apply versioned SQL migrations to a PostgreSQL database
description:
  - Applies SQL migrations, each identified by an integer version, in ascending version order.
    The SQL arrives already rendered (the role renders C(NNN_name.sql.j2) templates on the
    controller), so only psycopg2 is needed on the target.
  - Every applied migration is recorded in a history table with the SHA-256 checksum of its
    SQL, the time, the login role that applied it and how long it ran.
  - Each pending migration runs in its own transaction together with its history row. A
    failing migration is rolled back alone; the migrations applied before it stay applied.
  - Before anything is applied, the history is checked against O(migrations). An applied
    migration whose SQL changed, an applied version that is no longer given, or a pending
    version below the newest applied one fails the run, and nothing is changed.
  - A session-level advisory lock, keyed on the schema and history table name, serialises
    concurrent runs against the same database. A run that waited for the lock reads the
    history again and applies only what is still pending.
options:
  migrations:
    description:
      - The migrations, in any order. Versions already in the history are checked, the others
        are applied in ascending version order.
    type: list
    elements: dict
    required: true
    suboptions:
      version:
        description: Version number, 1 or more, unique among O(migrations).
        type: int
        required: true
      name:
        description: Short name of the migration, stored in the history table.
        type: str
        required: true
      sql:
        description:
          - The rendered SQL. Its exact text is checksummed, so an applied migration must
            render to the same text on every run.
          - Must not contain transaction control (C(BEGIN), C(COMMIT)) or statements that
            cannot run inside a transaction block.
        type: str
        required: true
      source:
        description: Path of the file the SQL came from; used to name the migration in messages.
        type: str
        default: ''
  schema:
    description:
      - The only schema on the search_path while migrations run, and the schema of the history
        table. Created when missing (owned by O(owner_role) when that is set).
      - Lowercase letters, digits and underscores, not starting with a digit, at most 63
        characters.
    type: str
    default: public
  history_table:
    description: Name of the history table, with the same identifier rules as O(schema).
    type: str
    default: postgres_hr_schema_history
  owner_role:
    description:
      - When set, each migration and the creation of the history table run after
        C(SET LOCAL ROLE), so the objects they create are owned by this role (typically a
        NOLOGIN role) and not by O(login_user). O(login_user) must be a member of it, and
        the role needs the CREATE privilege on O(schema).
      - Empty means objects are owned by O(login_user).
    type: str
    default: ''
  lock_timeout:
    description:
      - Seconds to wait for the advisory lock held by another run before failing.
      - Check mode does not take the lock, so it never waits.
    type: int
    default: 60
attributes:
  check_mode:
    description: Whether a check-mode run reports what it would change without changing it.
    support: full
    details: Reads the history, reports what is pending and applies nothing.
  diff_mode:
    description: Whether a diff-mode run returns what it changed, or in check mode would change.
    support: full
    details: The diff shows the SQL of every pending migration, under a header per version.
notes:
  - Migrations are never rolled back by this module; to undo one, add a new version.
  - Statements that PostgreSQL refuses inside a transaction block (such as
    C(CREATE INDEX CONCURRENTLY) or C(VACUUM)) cannot be used in a migration.
  - Advisory locks are per database, so runs against different databases never wait for
    each other.
extends_documentation_fragment:
  - postgres_hr_connection
author:
  - postgres_hr maintainers
'''

EXAMPLES = r'''
- name: Apply the HR schema migrations as the owner role
  postgres_hr_migrate:
    db: hr_db
    owner_role: hr_owner
    migrations:
      - version: 1
        name: create_employees
        source: templates/migrations/001_create_employees.sql.j2
        sql: "{{ lookup('ansible.builtin.template', 'migrations/001_create_employees.sql.j2') }}"
  become: true
  become_user: postgres

- name: Show which migrations a run would apply, and their SQL
  postgres_hr_migrate:
    db: hr_db
    schema: hr
    migrations: "{{ __postgres_hr_migrations }}"
  check_mode: true
  diff: true
  register: __postgres_hr_pending
'''

RETURN = r'''
applied:
  description: Migrations this run applied, in the order they ran.
  returned: always
  type: list
  elements: dict
  sample: [{"version": 2, "name": "add_leave_type",
            "checksum": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}]
pending:
  description:
    - Migrations still not applied after this run; in check mode, every migration a real run
      would apply. After a failure, the failed migration and the ones after it.
  returned: always
  type: list
  elements: dict
  sample: [{"version": 3, "name": "add_manager_index",
            "checksum": "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"}]
history:
  description:
    - Every row of the history table after the run, by version; empty when the table does
      not exist yet (check mode on a new database).
    - C(applied_at) is an ISO 8601 timestamp, C(execution_ms) the run time in milliseconds.
  returned: always
  type: list
  elements: dict
  sample: [{"version": 1, "name": "create_employees",
            "checksum": "2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
            "applied_at": "2026-01-05T10:12:03.120948+00:00", "applied_by": "postgres",
            "execution_ms": 41}]
msg:
  description: One sentence saying what the run did or found.
  returned: always
  type: str
  sample: Applied 2 migration(s) to database "hr_db" (versions 1, 2).
diff:
  description: The SQL of the pending migrations, each under a comment header naming it.
  returned: in diff mode
  type: dict
  sample: {"before": "", "after": "-- version 3 \"add_manager_index\"\nCREATE INDEX ...\n"}
'''

import hashlib
import re
import struct
import time
from dataclasses import dataclass
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.postgres_hr_db import (
    HAS_PSYCOPG2,
    PSYCOPG2_IMPORT_ERROR,
    ConnectError,
    connect,
    connection_argument_spec,
    describe_target,
    quote_ident,
    validate_connection_params,
)

try:
    import psycopg2
except ImportError:  # reported through HAS_PSYCOPG2 before any use
    pass

IDENTIFIER = re.compile(r'[a-z_][a-z0-9_]{0,62}')

# PostgreSQL's SQLSTATE for "lock_timeout expired".
LOCK_NOT_AVAILABLE = '55P03'

HISTORY_COLUMNS = 'version, name, checksum, applied_at, applied_by, execution_ms'


class MigrateError(Exception):
    """A run cannot go on; the message says what was found and what to do."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str
    source: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode('utf-8')).hexdigest()

    @property
    def label(self) -> str:
        """How messages name the migration: by its file when the caller passed one."""
        where = ' (%s)' % self.source if self.source else ''
        return 'version %d "%s"%s' % (self.version, self.name, where)

    def summary(self) -> dict[str, Any]:
        return dict(version=self.version, name=self.name, checksum=self.checksum)


def argument_spec() -> dict[str, dict[str, Any]]:
    spec = connection_argument_spec()
    spec.update(
        migrations=dict(type='list', elements='dict', required=True, options=dict(
            version=dict(type='int', required=True),
            name=dict(type='str', required=True),
            sql=dict(type='str', required=True),
            source=dict(type='str', default=''),
        )),
        schema=dict(type='str', default='public'),
        history_table=dict(type='str', default='postgres_hr_schema_history'),
        owner_role=dict(type='str', default=''),
        lock_timeout=dict(type='int', default=60),
    )
    return spec


def validate_params(params: dict[str, Any]) -> list[str]:
    """Return what is wrong with the options, as sentences; empty when all is well."""
    problems = validate_connection_params(params)
    identifiers = ['schema', 'history_table'] + (['owner_role'] if params['owner_role'] else [])
    for option in identifiers:
        value = params[option]
        if not IDENTIFIER.fullmatch(value):
            problems.append('%s must be a lowercase identifier matching %s, got "%s".' % (
                option, IDENTIFIER.pattern, value))
    if params['lock_timeout'] < 1:
        problems.append('lock_timeout must be at least 1 second, got %d.'
                        % params['lock_timeout'])
    return problems + validate_migrations(params['migrations'])


def validate_migrations(migrations: list[dict[str, Any]]) -> list[str]:
    problems = []
    seen = {}
    for item in migrations:
        label = item['source'] or 'version %d "%s"' % (item['version'], item['name'])
        if item['version'] < 1:
            problems.append('%s: version must be 1 or more, got %d.' % (label, item['version']))
        if item['version'] in seen:
            problems.append('%s: version %d is also used by %s; versions must be unique.' % (
                label, item['version'], seen[item['version']]))
        seen.setdefault(item['version'], label)
        if not item['name'].strip():
            problems.append('%s: name must not be empty.' % label)
        if not item['sql'].strip():
            problems.append('%s: sql is empty; a migration must change something.' % label)
    return problems


def load_migrations(items: list[dict[str, Any]]) -> list[Migration]:
    migrations = [Migration(item['version'], item['name'], item['sql'], item['source'])
                  for item in items]
    return sorted(migrations, key=lambda migration: migration.version)


def lock_key(schema: str, table: str) -> int:
    """A fixed bigint for pg_advisory_lock, the same on every controller and every run."""
    digest = hashlib.sha256(('postgres_hr_migrate:%s.%s' % (schema, table)).encode()).digest()
    return struct.unpack('>q', digest[:8])[0]


def history_problems(history: list[dict[str, Any]], migrations: list[Migration],
                     table: str) -> list[str]:
    """Why the history and the given migrations disagree; empty when they agree."""
    by_version = {migration.version: migration for migration in migrations}
    problems = []
    for row in history:
        migration = by_version.get(row['version'])
        if migration is None:
            problems.append(
                'Version %d "%s" is recorded in %s as applied (%s by %s) but is not among the '
                'migrations given. Applied migrations must stay: restore its file.' % (
                    row['version'], row['name'], table, row['applied_at'], row['applied_by']))
        elif migration.checksum != row['checksum']:
            problems.append(
                'Migration %s was edited after it was applied: %s holds checksum %s, the '
                'rendered SQL now has %s. Applied migrations must not be edited; restore '
                'the file and add the change as a new version.' % (
                    migration.label, table, row['checksum'], migration.checksum))
    return problems


def order_problems(history: list[dict[str, Any]], pending: list[Migration]) -> list[str]:
    """Pending versions below the newest applied one would run out of order; refuse them."""
    newest = max((row['version'] for row in history), default=0)
    return ['Migration %s is pending but version %d is already applied; migrations apply in '
            'ascending order only, so give it a version above %d.' % (
                migration.label, newest, newest)
            for migration in pending if migration.version < newest]


def pending_migrations(history: list[dict[str, Any]],
                       migrations: list[Migration]) -> list[Migration]:
    applied = {row['version'] for row in history}
    return [migration for migration in migrations if migration.version not in applied]


def build_diff(pending: list[Migration]) -> dict[str, str]:
    after = '\n'.join('-- %s\n%s%s' % (
        migration.label, migration.sql, '' if migration.sql.endswith('\n') else '\n')
        for migration in pending)
    return dict(before='', after=after, before_header='applied migrations',
                after_header='pending migrations')


def pg_message(error: Exception) -> str:
    """The server's own words and SQLSTATE, without the statement echo psycopg2 appends."""
    diag = getattr(error, 'diag', None)
    primary = diag.message_primary if diag is not None else None
    if not primary:
        text = str(error).strip()
        return text.splitlines()[0] if text else repr(error)
    return '%s (SQLSTATE %s)' % (primary, error.pgcode)


class Migrator:
    """One connection to one database, and the history table in it."""

    def __init__(self, conn: Any, params: dict[str, Any]) -> None:
        self.conn = conn
        self.schema = params['schema']
        self.table = params['history_table']
        self.owner = params['owner_role']
        self.target = describe_target(params)
        self.quoted_schema = quote_ident(self.schema, conn)
        self.qualified = '%s.%s' % (self.quoted_schema, quote_ident(self.table, conn))

    def lock(self, timeout: int) -> None:
        """Take the session-level advisory lock, waiting at most `timeout` seconds."""
        key = lock_key(self.schema, self.table)
        try:
            with self.conn, self.conn.cursor() as cur:
                # LOCAL: the limit must not stay on the session and bound the migrations.
                cur.execute("SELECT set_config('lock_timeout', %s, true)", ('%ds' % timeout,))
                cur.execute('SELECT pg_advisory_lock(%s)', (key,))
        except psycopg2.Error as exc:
            if exc.pgcode != LOCK_NOT_AVAILABLE:
                raise
            raise MigrateError(
                'Another migrator holds the migration lock of %s in %s (%s); gave up after %d '
                's. Let that run finish, or raise lock_timeout, and run again.' % (
                    self.qualified, self.target, self.lock_holder(key), timeout))

    def lock_holder(self, key: int) -> str:
        # A bigint advisory key is stored as two 32-bit halves, with objsubid 1.
        unsigned = key & 0xFFFFFFFFFFFFFFFF
        with self.conn, self.conn.cursor() as cur:
            cur.execute(
                "SELECT a.pid, a.usename, a.application_name FROM pg_locks l "
                "JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database()) "
                "AND l.classid = %s AND l.objid = %s AND l.objsubid = 1",
                (unsigned >> 32, unsigned & 0xFFFFFFFF))
            row = cur.fetchone()
        if row is None:
            return 'holder already gone'
        return 'held by pid %d, user "%s", application "%s"' % row

    def owner_problem(self) -> str | None:
        """Why migrations cannot run as the owner role, found before anything is applied."""
        with self.conn, self.conn.cursor() as cur:
            cur.execute('SELECT pg_has_role(session_user, oid, %s) FROM pg_roles '
                        'WHERE rolname = %s', ('MEMBER', self.owner))
            row = cur.fetchone()
        if row is None:
            return 'owner_role "%s" does not exist in %s; create it first.' % (
                self.owner, self.target)
        if not row[0]:
            return ('The login role is not a member of owner_role "%s" in %s, so it cannot SET '
                    'ROLE to it; grant the membership.' % (self.owner, self.target))
        return None

    def history_exists(self) -> bool:
        with self.conn, self.conn.cursor() as cur:
            cur.execute('SELECT to_regclass(%s) IS NOT NULL', (self.qualified,))
            return cur.fetchone()[0]

    def read_history(self) -> list[dict[str, Any]]:
        if not self.history_exists():
            return []
        with self.conn, self.conn.cursor() as cur:
            cur.execute('SELECT %s FROM %s ORDER BY version' % (HISTORY_COLUMNS, self.qualified))
            names = [column.name for column in cur.description]
            rows = [dict(zip(names, values)) for values in cur.fetchall()]
        for row in rows:
            row['applied_at'] = row['applied_at'].isoformat()
        return rows

    def become_owner(self, cur: Any) -> None:
        if self.owner:
            cur.execute('SET LOCAL ROLE %s' % quote_ident(self.owner, self.conn))

    def create_history_table(self) -> None:
        """Create the schema and the history table, owned by the owner role when set."""
        try:
            with self.conn, self.conn.cursor() as cur:
                self.create_schema(cur)
                self.become_owner(cur)
                self.create_table(cur)
        except psycopg2.Error as exc:
            as_role = ' as role "%s"' % self.owner if self.owner else ''
            raise MigrateError(
                'Cannot create the history table %s%s in %s: %s. The role needs the CREATE '
                'privilege on schema "%s" (and on the database when the schema is missing).' % (
                    self.qualified, as_role, self.target, pg_message(exc), self.schema))

    def create_schema(self, cur: Any) -> None:
        # Only when missing: CREATE SCHEMA IF NOT EXISTS demands CREATE on the database even
        # when the schema is already there.
        cur.execute('SELECT 1 FROM pg_namespace WHERE nspname = %s', (self.schema,))
        if cur.fetchone() is not None:
            return
        authorization = ''
        if self.owner:
            authorization = ' AUTHORIZATION %s' % quote_ident(self.owner, self.conn)
        cur.execute('CREATE SCHEMA %s%s' % (self.quoted_schema, authorization))

    def create_table(self, cur: Any) -> None:
        cur.execute(
            'CREATE TABLE %s (\n'
            '    version INTEGER PRIMARY KEY,\n'
            '    name TEXT NOT NULL,\n'
            '    checksum TEXT NOT NULL,\n'
            '    applied_at TIMESTAMPTZ NOT NULL DEFAULT now(),\n'
            '    applied_by TEXT NOT NULL DEFAULT session_user,\n'
            '    execution_ms INTEGER NOT NULL\n'
            ')' % self.qualified)
        cur.execute("COMMENT ON TABLE %s IS 'Migrations applied by postgres_hr_migrate; "
                    "rows are never edited.'" % self.qualified)

    def apply(self, migration: Migration) -> None:
        """Run one migration and record it, in one transaction: both happen or neither."""
        with self.conn, self.conn.cursor() as cur:
            cur.execute("SELECT set_config('search_path', %s, true)", (self.quoted_schema,))
            self.become_owner(cur)
            started = time.monotonic()
            cur.execute(migration.sql)
            elapsed_ms = round((time.monotonic() - started) * 1000)
            cur.execute('INSERT INTO %s (version, name, checksum, applied_by, execution_ms) '
                        'VALUES (%%s, %%s, %%s, session_user, %%s)' % self.qualified,
                        (migration.version, migration.name, migration.checksum, elapsed_ms))


def versions(migrations: list[Migration]) -> str:
    """'version 3' or 'versions 1, 2', for messages."""
    numbers = ', '.join(str(migration.version) for migration in migrations)
    return ('version ' if len(migrations) == 1 else 'versions ') + numbers


def summary_message(pending: list[Migration], check_mode: bool, db: str) -> str:
    if not pending:
        return 'Nothing pending in database "%s"; every migration is applied.' % db
    if check_mode:
        return '%d migration(s) pending in database "%s" (%s); check mode applied ' \
               'nothing.' % (len(pending), db, versions(pending))
    return 'Applied %d migration(s) to database "%s" (%s).' % (
        len(pending), db, versions(pending))


def apply_pending(module: AnsibleModule, migrator: Migrator, pending: list[Migration],
                  result: dict[str, Any]) -> None:
    """Apply in order, stopping at the first failure; what ran before it stays committed."""
    if not migrator.history_exists():
        migrator.create_history_table()
    for index, migration in enumerate(pending):
        try:
            migrator.apply(migration)
        except psycopg2.Error as exc:
            kept = ''
            if index:
                kept = ' %s, applied before it in this run, stay applied.' % versions(
                    pending[:index]).capitalize()
            if not migrator.conn.closed:  # a lost connection cannot report the history
                result['history'] = migrator.read_history()
            result.update(changed=index > 0, pending=[m.summary() for m in pending[index:]],
                          msg='Migration %s failed in %s and was rolled back: %s.%s Fix the '
                              'file and run again.' % (migration.label, migrator.target,
                                                       pg_message(exc), kept))
            module.fail_json(**result)
        result['applied'].append(migration.summary())
        result['pending'] = [m.summary() for m in pending[index + 1:]]


def run(module: AnsibleModule, migrator: Migrator, migrations: list[Migration]) -> None:
    if not module.check_mode:
        migrator.lock(module.params['lock_timeout'])
    if migrator.owner:
        problem = migrator.owner_problem()
        if problem:
            module.fail_json(msg=problem)

    history = migrator.read_history()
    pending = pending_migrations(history, migrations)
    problems = history_problems(history, migrations, migrator.qualified)
    problems += order_problems(history, pending)
    if problems:
        module.fail_json(msg=' '.join(problems + ['Nothing was applied.']),
                         problems=problems, applied=[],
                         pending=[m.summary() for m in pending], history=history)

    result = dict(changed=bool(pending), applied=[], pending=[m.summary() for m in pending],
                  history=history,
                  msg=summary_message(pending, module.check_mode, module.params['db']))
    if module._diff:
        result['diff'] = build_diff(pending)
    if pending and not module.check_mode:
        apply_pending(module, migrator, pending, result)
        result['history'] = migrator.read_history()
    module.exit_json(**result)


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if not HAS_PSYCOPG2:
        module.fail_json(msg=missing_required_lib('psycopg2'), exception=PSYCOPG2_IMPORT_ERROR)
    problems = validate_params(module.params)
    if problems:
        module.fail_json(msg='Invalid options: ' + ' '.join(problems), problems=problems)
    migrations = load_migrations(module.params['migrations'])

    try:
        conn = connect(module.params)
    except ConnectError as exc:
        module.fail_json(msg=str(exc))
    try:
        migrator = Migrator(conn, module.params)
        run(module, migrator, migrations)
    except MigrateError as exc:
        module.fail_json(msg=str(exc))
    except psycopg2.Error as exc:
        module.fail_json(msg='Migration bookkeeping failed in %s: %s' % (
            describe_target(module.params), pg_message(exc)))
    finally:
        conn.close()


if __name__ == '__main__':
    main()
