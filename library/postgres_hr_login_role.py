#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Ensure one PostgreSQL role of the HR database, with a password the server never sees."""

from __future__ import annotations

DOCUMENTATION = r'''
---
module: postgres_hr_login_role
short_description: Ensure a PostgreSQL role whose password never reaches the server log
description:
  - Ensures one PostgreSQL role for the HR database, typically the application's read-only
    login role, the C(NOLOGIN) role that owns the database, or the role standbys stream WAL as.
  - The role is always C(NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS INHERIT), and
    C(REPLICATION) only with O(replication=true); an existing role whose attributes, connection
    limit, expiry, role-level settings or (with O(member_of)) role memberships differ is
    repaired.
  - The password is turned into a SCRAM-SHA-256 verifier on the managed host and only the
    verifier is sent, so the plaintext never reaches the server, even with
    C(log_statement=all). Statement logging is switched off for the transaction before the
    statement that carries the verifier, so the verifier is not logged either.
  - A stored SCRAM-SHA-256 verifier is checked against the password with its own salt and
    iteration count; the password is only set again when it does not match, or when the stored
    password is MD5 or missing.
  - The module connects as a superuser; it needs to read C(pg_authid) and to change logging
    settings of its own session.
  - Only state C(present) exists; the module never drops a role.
version_added: "1.0.0"
author:
  - HR database team
options:
  name:
    description:
      - Name of the role.
      - Lower case letters, digits and underscores, starting with a letter or underscore,
        at most 63 characters. Names starting with C(pg_) are reserved by PostgreSQL.
    type: str
    required: true
  login:
    description:
      - Whether the role may log in (C(LOGIN)) or not (C(NOLOGIN)).
      - A C(NOLOGIN) role has no password; a password stored for it is removed.
    type: bool
    default: true
  replication:
    description:
      - Whether the role may open replication connections (C(REPLICATION)), as standbys do to
        stream WAL and as C(pg_basebackup) does to copy a cluster.
      - A C(REPLICATION) role can read every byte of the cluster through a base backup,
        whatever its grants, so give it to a role that serves only that purpose.
      - V(false) makes the role C(NOREPLICATION), and takes the attribute away from an existing
        role that has it.
    type: bool
    default: false
  password:
    description:
      - The role's password, at least 12 characters, ASCII only.
      - Required when O(login=true); not allowed when O(login=false).
      - Never sent to the server, logged or returned; only its SCRAM-SHA-256 verifier
        (4096 iterations, 16-byte random salt) is sent.
      - This option is C(no_log).
    type: str
  connection_limit:
    description:
      - Maximum number of concurrent connections of the role; V(-1) means no limit.
    type: int
    default: -1
  valid_until:
    description:
      - Date and time after which the role's password is no longer valid, in any form
        PostgreSQL accepts for C(timestamptz). A time without a zone is read as UTC.
      - A role without an expiry counts as V(infinity).
    type: str
    default: infinity
  settings:
    description:
      - Role-level defaults of configuration parameters, set with C(ALTER ROLE ... SET), for
        all databases. Keys are parameter names, values their settings as strings.
      - Role-level settings that are not listed are reset, so the role has exactly these.
      - Settings of the role for one database only (C(ALTER ROLE ... IN DATABASE ... SET)) are
        always removed, since they would take precedence over these.
      - YAML booleans become V(on) or V(off) and numbers become their decimal text.
      - Each value is sent as one string literal, so a list parameter such as C(search_path)
        receives a single element.
    type: dict
    default: {}
  member_of:
    description:
      - The roles this role is a member of, exactly. Memberships not listed are revoked,
        whoever granted them; missing ones are granted.
      - V([]) makes the role a member of no role at all, predefined roles such as
        C(pg_read_all_data) included.
      - Omit the option to leave memberships as they are.
    type: list
    elements: str
attributes:
  check_mode:
    support: full
    description: The statements run in a transaction that is rolled back.
  diff_mode:
    support: full
    description: >-
      Shows attributes, connection limit, expiry, settings and memberships before and after;
      the password only as C(changed) or C(unchanged), never its value or verifier.
  platform:
    platforms: posix
    support: full
    description: Needs psycopg2 on the managed host.
notes:
  - PostgreSQL prepares passwords with SASLprep before hashing; for ASCII that changes nothing,
    and this module refuses non-ASCII passwords rather than reproduce SASLprep.
  - Besides C(log_statement), the statement that carries the verifier also runs with
    C(log_min_error_statement=panic), C(log_min_duration_statement=-1), sampling, debug tree
    printing, C(track_activities) and C(pg_stat_statements) utility tracking turned off.
extends_documentation_fragment:
  - postgres_hr_connection
'''

EXAMPLES = r'''
- name: Ensure the read-only login role of the query application
  postgres_hr_login_role:
    db: hr_db
    name: query_app_readonly
    password: "{{ vault_postgres_hr_readonly_password }}"
    connection_limit: 20
    member_of: []
    settings:
      statement_timeout: 30s
      default_transaction_read_only: "on"
  become: true
  become_user: postgres

- name: Ensure the role the standbys stream WAL as
  postgres_hr_login_role:
    db: postgres
    name: hr_replicator
    replication: true
    password: "{{ vault_postgres_hr_replication_password }}"
    connection_limit: 5
    member_of: []

- name: Ensure the NOLOGIN role that owns the HR database
  postgres_hr_login_role:
    db: postgres
    name: hr_owner
    login: false

- name: Ensure a login role that expires at the end of the year
  postgres_hr_login_role:
    login_host: 127.0.0.1
    login_user: postgres
    login_password: "{{ vault_postgres_superuser_password }}"
    db: hr_db
    name: hr_auditor
    password: "{{ vault_hr_auditor_password }}"
    valid_until: "2030-12-31 23:59:59+00"
'''

RETURN = r'''
role:
  description: Name of the role.
  returned: always
  type: str
  sample: query_app_readonly
queries:
  description:
    - Statements that changed the role (or would have, in check mode), in order.
    - A password verifier is shown as C('********'); session logging settings are not listed.
  returned: always
  type: list
  elements: str
  sample:
    - CREATE ROLE "query_app_readonly" WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE
      NOREPLICATION NOBYPASSRLS INHERIT CONNECTION LIMIT 20 VALID UNTIL 'infinity'
    - REVOKE "pg_read_all_data" FROM "query_app_readonly" GRANTED BY "postgres"
    - ALTER ROLE "query_app_readonly" SET statement_timeout = '30s'
    - ALTER ROLE "query_app_readonly" IN DATABASE "hr_db" RESET ALL
    - ALTER ROLE "query_app_readonly" PASSWORD '********'
password_changed:
  description: Whether the stored password was set (or removed, for a NOLOGIN role).
  returned: always
  type: bool
  sample: true
attributes:
  description: The role's attributes after the run (as they would be, in check mode).
  returned: success
  type: dict
  contains:
    login:
      description: C(LOGIN) or not.
      type: bool
    superuser:
      description: Always false.
      type: bool
    createdb:
      description: Always false.
      type: bool
    createrole:
      description: Always false.
      type: bool
    replication:
      description: C(REPLICATION) or not, as O(replication) asks.
      type: bool
    bypassrls:
      description: Always false.
      type: bool
    inherit:
      description: Always true.
      type: bool
    connection_limit:
      description: Connection limit, -1 for none.
      type: int
    valid_until:
      description: Password expiry as PostgreSQL prints it in UTC.
      type: str
  sample:
    login: true
    superuser: false
    createdb: false
    createrole: false
    replication: false
    bypassrls: false
    inherit: true
    connection_limit: 20
    valid_until: infinity
settings:
  description: Role-level settings after the run (as they would be, in check mode).
  returned: success
  type: dict
  sample:
    statement_timeout: 30s
    default_transaction_read_only: "on"
member_of:
  description: Roles the role is a member of after the run (as they would be, in check mode).
  returned: success
  type: list
  elements: str
  sample: []
msg:
  description: One sentence saying what happened.
  returned: always
  type: str
  sample: Role "query_app_readonly" created.
'''

import base64
import hashlib
import hmac
import os
import re
from typing import Any, NamedTuple

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
except ImportError:  # pragma: no cover - reported through HAS_PSYCOPG2
    pass

SCRAM_ITERATIONS = 4096
SALT_BYTES = 16
MIN_PASSWORD_LENGTH = 12
MASK = '********'

ROLE_NAME = re.compile(r'^[a-z_][a-z0-9_]{0,62}$')
# Lower case only: PostgreSQL folds unquoted parameter names, and pg_db_role_setting keeps the
# folded name, so a mixed-case key would never compare equal to what is stored.
SETTING_NAME = re.compile(r'^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$')
SCRAM_VERIFIER = re.compile(
    r'^SCRAM-SHA-256\$(\d+):([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+):([A-Za-z0-9+/=]+)$')

# Attributes every role of this module has, with the keywords that grant and revoke them.
FIXED_ATTRIBUTES = {
    'superuser': (False, 'SUPERUSER', 'NOSUPERUSER'),
    'createdb': (False, 'CREATEDB', 'NOCREATEDB'),
    'createrole': (False, 'CREATEROLE', 'NOCREATEROLE'),
    'bypassrls': (False, 'BYPASSRLS', 'NOBYPASSRLS'),
    'inherit': (True, 'INHERIT', 'NOINHERIT'),
}
# Attributes the caller chooses: option name, keyword that grants, keyword that revokes.
CHOSEN_ATTRIBUTES = {
    'replication': ('REPLICATION', 'NOREPLICATION'),
}

# Set before the transaction starts: PostgreSQL decides whether to sample a transaction's
# statements into the log when the transaction begins, so changing it later is too late.
# UTC makes valid_until without a zone, and the expiry this module reports, host-independent.
SESSION_SETTINGS = (
    "SET log_transaction_sample_rate = 0",
    "SET TimeZone = 'UTC'",
)

# Everything through which the statement carrying the verifier could reach a log or a view.
# log_statement alone is not enough: a slow or failing statement is logged by other settings.
VERIFIER_GUARDS = (
    "SET LOCAL log_statement = 'none'",
    "SET LOCAL log_min_error_statement = 'panic'",
    "SET LOCAL log_min_duration_statement = -1",
    "SET LOCAL log_min_duration_sample = -1",
    "SET LOCAL debug_print_parse = off",
    "SET LOCAL debug_print_rewritten = off",
    "SET LOCAL debug_print_plan = off",
    "SET LOCAL track_activities = off",
    # Without the extension loaded this only defines a placeholder, which is harmless.
    "SET LOCAL pg_stat_statements.track_utility = off",
)


class Statement(NamedTuple):
    """One statement to run; `secret` is a parameter that must never be shown."""

    sql: str
    params: tuple = ()
    secret: str | None = None


class RoleState(NamedTuple):
    """What the server holds for a role; `password` is pg_authid.rolpassword.

    `memberships` holds (role, grantor) pairs: from PostgreSQL 16 on, one membership can have
    several grantors, and each grant must be revoked by naming its grantor.
    `database_settings` maps a database name to the role's settings for that database only.
    """

    oid: int
    attributes: dict[str, Any]
    password: str | None
    valid_until_matches: bool
    settings: dict[str, str]
    memberships: list[tuple[str, str | None]]
    database_settings: dict[str, dict[str, str]]


class ModuleFailure(Exception):
    """A failure whose message is safe to show: it never carries a password or verifier."""


def scram_verifier(password: str, salt: bytes, iterations: int) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for an ASCII password (RFC 5802, 7677)."""
    salted = hashlib.pbkdf2_hmac('sha256', password.encode('ascii'), salt, iterations)
    client_key = hmac.new(salted, b'Client Key', hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b'Server Key', hashlib.sha256).digest()
    return 'SCRAM-SHA-256$%d:%s$%s:%s' % (iterations, b64(salt), b64(stored_key), b64(server_key))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode('ascii')


def new_verifier(password: str) -> str:
    return scram_verifier(password, os.urandom(SALT_BYTES), SCRAM_ITERATIONS)


def password_matches(password: str, stored: str | None) -> bool:
    """True when the stored value is a SCRAM verifier of this password.

    MD5 hashes, missing passwords and malformed verifiers never match, so they get replaced.
    """
    match = SCRAM_VERIFIER.match(stored or '')
    if not match:
        return False
    try:
        salt = base64.b64decode(match.group(2), validate=True)
    except ValueError:
        return False
    iterations = int(match.group(1))
    if iterations < 1:
        return False
    return hmac.compare_digest(scram_verifier(password, salt, iterations), stored)


def setting_text(value: Any) -> str:
    """The text of a setting value; YAML turns an unquoted `on` into a boolean."""
    if isinstance(value, bool):
        return 'on' if value else 'off'
    return str(value)


def check_params(params: dict[str, Any]) -> list[str]:
    """What is wrong with the options, as sentences; never quotes the password."""
    problems = validate_connection_params(params)
    name = params['name']
    if not ROLE_NAME.match(name):
        problems.append('name must match %s (lower case, at most 63 characters), got "%s".'
                        % (ROLE_NAME.pattern, name))
    elif name.startswith('pg_'):
        problems.append('name "%s" is reserved: PostgreSQL keeps names starting with pg_ for '
                        'its own roles.' % name)
    if params['connection_limit'] < -1:
        problems.append('connection_limit must be -1 (no limit) or more, got %d.'
                        % params['connection_limit'])
    problems.extend(check_password(params['password'], params['login']))
    problems.extend(check_settings(params['settings']))
    problems.extend(check_member_of(params['member_of'], name))
    return problems


def check_password(password: str | None, login: bool) -> list[str]:
    if not login:
        if password is not None:
            return ['password is set but login is false: a NOLOGIN role has no password. '
                    'Leave out password, or set login: true.']
        return []
    if not password:
        return ['password is required when login is true.']
    if len(password) < MIN_PASSWORD_LENGTH:
        return ['password is shorter than %d characters; choose a longer one.'
                % MIN_PASSWORD_LENGTH]
    if not password.isascii() or '\x00' in password:
        # Non-ASCII passwords go through SASLprep on server and client; a verifier computed
        # without it would lock the role out, so they are refused rather than guessed.
        return ['password contains non-ASCII or NUL characters, which this module does not '
                'support; use printable ASCII.']
    return []


def check_settings(settings: dict[str, Any]) -> list[str]:
    problems = []
    for key, value in settings.items():
        if not SETTING_NAME.match(key):
            problems.append('settings key "%s" is not a parameter name (lower case letters, '
                            'digits, underscores, at most one dot).' % key)
        elif value is None:
            problems.append('settings.%s has no value; to reset it, leave the key out.' % key)
    return problems


def check_member_of(member_of: list[str] | None, name: str) -> list[str]:
    # Predefined roles (pg_*) are valid targets here, so only the name syntax is checked.
    problems = []
    for role in member_of or []:
        if not ROLE_NAME.match(role):
            problems.append('member_of entry "%s" is not a role name (lower case letters, '
                            'digits, underscores, at most 63 characters).' % role)
        elif role == name:
            problems.append('member_of lists the role "%s" itself.' % role)
    return problems


def setting_ident(name: str, conn: Any) -> str:
    """A parameter name for SQL; custom names have a dot, each part is its own identifier."""
    return '.'.join(quote_ident(part, conn) for part in name.split('.'))


def read_role(cur: Any, name: str, valid_until: str) -> RoleState | None:
    cur.execute(
        "SELECT oid, rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, "
        "rolbypassrls, rolinherit, rolconnlimit, rolvaliduntil::text, rolpassword, "
        "coalesce(rolvaliduntil, 'infinity') = %s::timestamptz "
        "FROM pg_authid WHERE rolname = %s", (valid_until, name))
    row = cur.fetchone()
    if row is None:
        return None
    attributes = dict(login=row[1], superuser=row[2], createdb=row[3], createrole=row[4],
                      replication=row[5], bypassrls=row[6], inherit=row[7],
                      connection_limit=row[8], valid_until=row[9] or 'infinity')
    return RoleState(row[0], attributes, row[10], row[11], read_settings(cur, row[0]),
                     read_memberships(cur, row[0]), read_database_settings(cur, row[0]))


def setting_entries(setconfig: list[str] | None) -> dict[str, str]:
    return dict(entry.split('=', 1) for entry in setconfig or [])


def read_settings(cur: Any, oid: int) -> dict[str, str]:
    cur.execute("SELECT setconfig FROM pg_db_role_setting "
                "WHERE setrole = %s AND setdatabase = 0", (oid,))
    row = cur.fetchone()
    return setting_entries(row[0] if row else None)


def read_database_settings(cur: Any, oid: int) -> dict[str, dict[str, str]]:
    cur.execute("SELECT d.datname, s.setconfig FROM pg_db_role_setting AS s "
                "JOIN pg_database AS d ON d.oid = s.setdatabase "
                "WHERE s.setrole = %s ORDER BY d.datname", (oid,))
    return {datname: setting_entries(setconfig) for datname, setconfig in cur.fetchall()}


def read_memberships(cur: Any, oid: int) -> list[tuple[str, str | None]]:
    # Before PostgreSQL 16 a grantor may be a role dropped since; it comes back as None.
    cur.execute("SELECT r.rolname, g.rolname FROM pg_auth_members AS m "
                "JOIN pg_roles AS r ON r.oid = m.roleid "
                "LEFT JOIN pg_roles AS g ON g.oid = m.grantor "
                "WHERE m.member = %s ORDER BY 1, 2", (oid,))
    return [(role, grantor) for role, grantor in cur.fetchall()]


def missing_roles(cur: Any, names: list[str]) -> list[str]:
    cur.execute('SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)', (list(names),))
    found = {row[0] for row in cur.fetchall()}
    return sorted(set(names) - found)


def wanted_attributes(params: dict[str, Any], valid_until_text: str) -> dict[str, Any]:
    wanted = {key: spec[0] for key, spec in FIXED_ATTRIBUTES.items()}
    wanted.update({key: params[key] for key in CHOSEN_ATTRIBUTES})
    wanted.update(login=params['login'], connection_limit=params['connection_limit'],
                  valid_until=valid_until_text)
    return wanted


def attribute_clauses(params: dict[str, Any], current: RoleState | None) -> list[str]:
    """Role options that differ from what is wanted; all of them for a new role."""
    clauses = []
    if current is None or current.attributes['login'] != params['login']:
        clauses.append('LOGIN' if params['login'] else 'NOLOGIN')
    for key, (wanted, grant, revoke) in FIXED_ATTRIBUTES.items():
        if current is None or current.attributes[key] != wanted:
            clauses.append(grant if wanted else revoke)
    for key, (grant, revoke) in CHOSEN_ATTRIBUTES.items():
        if current is None or current.attributes[key] != params[key]:
            clauses.append(grant if params[key] else revoke)
    if current is None or current.attributes['connection_limit'] != params['connection_limit']:
        clauses.append('CONNECTION LIMIT %d' % params['connection_limit'])
    if current is None or not current.valid_until_matches:
        clauses.append('VALID UNTIL %s')
    return clauses


def role_statement(params: dict[str, Any], current: RoleState | None,
                   role: str) -> Statement | None:
    clauses = attribute_clauses(params, current)
    if not clauses:
        return None
    verb = 'CREATE ROLE' if current is None else 'ALTER ROLE'
    sql = '%s %s WITH %s' % (verb, role, ' '.join(clauses))
    has_expiry = clauses[-1] == 'VALID UNTIL %s'
    return Statement(sql, (params['valid_until'],) if has_expiry else ())


def settings_statements(wanted: dict[str, str], current: RoleState | None, role: str,
                        conn: Any) -> list[Statement]:
    statements = []
    settings = current.settings if current else {}
    for key in sorted(wanted):
        if settings.get(key) != wanted[key]:
            sql = 'ALTER ROLE %s SET %s = %%s' % (role, setting_ident(key, conn))
            statements.append(Statement(sql, (wanted[key],)))
    for key in sorted(set(settings) - set(wanted)):
        statements.append(Statement('ALTER ROLE %s RESET %s' % (role, setting_ident(key, conn))))
    # A role may give itself settings for one database, and those override its role-wide
    # settings there: a limit set above would not hold in that database.
    for database in sorted(current.database_settings if current else {}):
        statements.append(Statement('ALTER ROLE %s IN DATABASE %s RESET ALL' % (
            role, quote_ident(database, conn))))
    return statements


def membership_statements(wanted: list[str] | None, current: RoleState | None, role: str,
                          conn: Any) -> list[Statement]:
    """GRANT and REVOKE statements that make the memberships exactly `wanted`."""
    if wanted is None:
        return []
    memberships = current.memberships if current else []
    statements = []
    for group, grantor in memberships:
        if group in wanted:
            continue
        sql = 'REVOKE %s FROM %s' % (quote_ident(group, conn), role)
        if grantor is not None:
            # Without GRANTED BY, PostgreSQL 16 and later revoke only the current user's grant.
            sql += ' GRANTED BY %s' % quote_ident(grantor, conn)
        statements.append(Statement(sql))
    held = {group for group, _ in memberships}
    for group in sorted(set(wanted) - held):
        statements.append(Statement('GRANT %s TO %s' % (quote_ident(group, conn), role)))
    return statements


def password_statement(params: dict[str, Any], current: RoleState | None,
                       role: str) -> Statement | None:
    stored = current.password if current else None
    if not params['login']:
        if stored is None:
            return None
        return Statement('ALTER ROLE %s PASSWORD NULL' % role)
    if password_matches(params['password'], stored):
        return None
    verifier = new_verifier(params['password'])
    return Statement('ALTER ROLE %s PASSWORD %%s' % role, (verifier,), secret=verifier)


def shown(cur: Any, statement: Statement) -> str:
    """The statement as the user may see it: a verifier is masked."""
    params = tuple(MASK if value == statement.secret else value for value in statement.params)
    return cur.mogrify(statement.sql, params).decode('utf-8') if params else statement.sql


def execute(cur: Any, statement: Statement) -> None:
    if statement.secret is not None:
        for guard in VERIFIER_GUARDS:
            cur.execute(guard)
    cur.execute(statement.sql, statement.params or None)


def canonical_valid_until(cur: Any, valid_until: str, target: str) -> str:
    try:
        cur.execute('SELECT %s::timestamptz::text', (valid_until,))
    except psycopg2.DataError as exc:
        raise ModuleFailure('valid_until "%s" is not a date and time PostgreSQL understands '
                            '(%s on %s).' % (valid_until, exc.diag.message_primary, target))
    return cur.fetchone()[0]


def require_superuser(cur: Any, name: str, target: str) -> None:
    cur.execute('SELECT rolsuper, current_user = %s FROM pg_roles '
                'WHERE rolname = current_user', (name,))
    is_superuser, is_self = cur.fetchone()
    if not is_superuser:
        raise ModuleFailure('Connected to %s, which is not a superuser; this module reads '
                            'pg_authid and changes logging settings, so use a superuser '
                            'login.' % target)
    if is_self:
        raise ModuleFailure('Role "%s" is the role this module connects as (%s); it would '
                            'lose SUPERUSER. Connect as another superuser.' % (name, target))


def describe_changes(name: str, created: bool, parts: list[str], check_mode: bool) -> str:
    would = 'would be ' if check_mode else ''
    if created:
        return 'Role "%s" %screated.' % (name, would)
    if parts:
        return 'Role "%s" %supdated: %s.' % (name, would, ', '.join(parts))
    return 'Role "%s" already as wanted.' % name


def diff_view(state: dict[str, Any] | None, password: str) -> dict[str, Any]:
    """One side of the diff; the password only as `changed` or `unchanged`.

    Both sides carry the password key, so a run that changes nothing shows no difference.
    """
    if state is None:
        return {'exists': False}
    return dict(state, exists=True, password=password)


def current_view(current: RoleState, member_of: list[str] | None) -> dict[str, Any]:
    view = dict(attributes=current.attributes, settings=current.settings)
    if current.database_settings:
        view['database_settings'] = current.database_settings
    if member_of is not None:
        view['member_of'] = sorted({group for group, _ in current.memberships})
    return view


def wanted_view(attributes: dict[str, Any], settings: dict[str, str],
                member_of: list[str] | None) -> dict[str, Any]:
    view = dict(attributes=attributes, settings=settings)
    if member_of is not None:
        view['member_of'] = sorted(set(member_of))
    return view


def plan(params: dict[str, Any], current: RoleState | None, wanted_settings: dict[str, str],
         conn: Any) -> dict[str, Any]:
    """The changes to make, by kind; an empty kind needs no change."""
    role = quote_ident(params['name'], conn)
    return dict(
        attributes=role_statement(params, current, role),
        memberships=membership_statements(params['member_of'], current, role, conn),
        settings=settings_statements(wanted_settings, current, role, conn),
        password=password_statement(params, current, role),
    )


def ordered(changes: dict[str, Any]) -> list[Statement]:
    # The password goes last so the guards that silence logging cover only that statement;
    # the other changes stay in the server log for audit.
    statements = ([changes['attributes']] + changes['memberships'] + changes['settings']
                  + [changes['password']])
    return [statement for statement in statements if statement]


def ensure_role(module: AnsibleModule, conn: Any, target: str) -> dict[str, Any]:
    """Plan and run the statements in one transaction; roll it back in check mode."""
    params = module.params
    wanted_settings = {key: setting_text(value) for key, value in params['settings'].items()}
    with conn.cursor() as cur:
        valid_until_text = canonical_valid_until(cur, params['valid_until'], target)
        absent = missing_roles(cur, params['member_of'] or [])
        if absent:
            raise ModuleFailure('member_of names roles that do not exist on %s: %s. Create '
                                'them first, or remove them from member_of.'
                                % (target, ', '.join(absent)))
        current = read_role(cur, params['name'], params['valid_until'])
        changes = plan(params, current, wanted_settings, conn)
        statements = ordered(changes)
        for statement in statements:
            execute(cur, statement)
        queries = [shown(cur, statement) for statement in statements]
    if module.check_mode:
        conn.rollback()
    else:
        conn.commit()

    after = wanted_attributes(params, valid_until_text)
    parts = [kind for kind, change in changes.items() if change]
    member_of = params['member_of']
    result = dict(changed=bool(statements), role=params['name'], queries=queries,
                  password_changed=changes['password'] is not None, attributes=after,
                  settings=wanted_settings,
                  msg=describe_changes(params['name'], current is None, parts,
                                       module.check_mode))
    if member_of is not None:
        result['member_of'] = sorted(set(member_of))
    elif current is not None:
        result['member_of'] = sorted({group for group, _ in current.memberships})
    else:
        result['member_of'] = []
    if module._diff:
        result['diff'] = dict(
            before=diff_view(current_view(current, member_of) if current else None,
                             'unchanged'),
            after=diff_view(wanted_view(after, wanted_settings, member_of),
                            'changed' if changes['password'] else 'unchanged'))
    return result


def argument_spec() -> dict[str, dict[str, Any]]:
    spec = connection_argument_spec()
    spec.update(
        name=dict(type='str', required=True),
        login=dict(type='bool', default=True),
        replication=dict(type='bool', default=False),
        password=dict(type='str', no_log=True),
        connection_limit=dict(type='int', default=-1),
        valid_until=dict(type='str', default='infinity'),
        settings=dict(type='dict', default={}),
        member_of=dict(type='list', elements='str'),
    )
    return spec


def prepare_session(conn: Any, name: str, target: str) -> None:
    """Check the login and set up logging outside the transaction that changes the role."""
    conn.autocommit = True
    with conn.cursor() as cur:
        require_superuser(cur, name, target)
        for statement in SESSION_SETTINGS:
            cur.execute(statement)
    conn.autocommit = False


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if not HAS_PSYCOPG2:
        module.fail_json(msg=missing_required_lib('psycopg2'), exception=PSYCOPG2_IMPORT_ERROR)
    problems = check_params(module.params)
    if problems:
        module.fail_json(msg=' '.join(problems), role=module.params['name'], queries=[],
                         password_changed=False)

    target = describe_target(module.params)
    try:
        conn = connect(module.params)
    except ConnectError as exc:
        module.fail_json(msg=str(exc), role=module.params['name'], queries=[],
                         password_changed=False)
    try:
        prepare_session(conn, module.params['name'], target)
        result = ensure_role(module, conn, target)
    except ModuleFailure as exc:
        module.fail_json(msg=str(exc), role=module.params['name'], queries=[],
                         password_changed=False)
    except psycopg2.Error as exc:
        # diag.message_primary, not str(exc): the full text can quote the failing statement.
        module.fail_json(msg='Could not ensure role "%s" on %s: %s' % (
            module.params['name'], target, exc.diag.message_primary or type(exc).__name__),
            role=module.params['name'], queries=[], password_changed=False)
    finally:
        conn.close()
    module.exit_json(**result)


if __name__ == '__main__':
    main()
