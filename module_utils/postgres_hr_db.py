# -*- coding: utf-8 -*-
"""Connection handling shared by the postgres_hr modules.

Every module of this project connects the same way: psycopg2 (Debian's python3-psycopg2 on the
target, nothing else), a bounded number of attempts for connection failures only, and error
messages that name host, port, database and user but never the password.
"""

from __future__ import annotations

import time
from typing import Any, Callable

try:
    import psycopg2
    import psycopg2.extensions
    HAS_PSYCOPG2 = True
    PSYCOPG2_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised only on hosts without psycopg2
    HAS_PSYCOPG2 = False
    PSYCOPG2_IMPORT_ERROR = exc


# Connection errors that another attempt cannot fix: retrying them only delays the real message.
PERMANENT_CONNECT_ERRORS = (
    'password authentication failed',
    'peer authentication failed',
    'no pg_hba.conf entry',
    'role "',
    'database "',
    'invalid port number',
    'invalid connection option',
    'SCRAM authentication requires',
    'fe_sendauth: no password supplied',
)


def connection_argument_spec() -> dict[str, dict[str, Any]]:
    """Options every postgres_hr module accepts for reaching its database."""
    return dict(
        login_host=dict(type='str', default=''),
        login_port=dict(type='int', default=5432),
        login_user=dict(type='str', default='postgres'),
        login_password=dict(type='str', default='', no_log=True),
        login_unix_socket=dict(type='str', default=''),
        db=dict(type='str', required=True),
        connect_retries=dict(type='int', default=5),
        connect_retry_delay=dict(type='float', default=2.0),
        connect_timeout=dict(type='int', default=5),
    )


def validate_connection_params(params: dict[str, Any]) -> list[str]:
    """Return what is wrong with the connection options, as sentences; empty when all is well."""
    problems = []
    if not 1 <= params['login_port'] <= 65535:
        problems.append('login_port must be between 1 and 65535, got %d.' % params['login_port'])
    if params['connect_retries'] < 1:
        problems.append('connect_retries must be at least 1, got %d.' % params['connect_retries'])
    if params['connect_retry_delay'] < 0:
        problems.append('connect_retry_delay must not be negative.')
    if params['connect_timeout'] < 1:
        problems.append('connect_timeout must be at least 1 second.')
    if not params['db']:
        problems.append('db must name a database.')
    return problems


def describe_target(params: dict[str, Any]) -> str:
    """Where a connection goes, for messages: never includes the password."""
    host = params['login_host'] or params['login_unix_socket'] or 'local socket'
    return 'database "%s" at %s port %d as user "%s"' % (
        params['db'], host, params['login_port'], params['login_user'])


def is_permanent_connect_error(error: Exception) -> bool:
    """True when the server answered and refused us, so another attempt would fail the same."""
    text = str(error)
    return any(marker in text for marker in PERMANENT_CONNECT_ERRORS)


class ConnectError(Exception):
    """The database could not be reached; the message is safe to show."""


def connect(params: dict[str, Any],
            sleep: Callable[[float], None] = time.sleep) -> 'psycopg2.extensions.connection':
    """Open a connection, retrying failures to reach the server.

    Authentication and configuration errors are raised at once: they are not transient.
    The connection is returned with autocommit off; callers own their transactions.
    """
    kwargs = dict(dbname=params['db'], user=params['login_user'], port=params['login_port'],
                  connect_timeout=params['connect_timeout'],
                  application_name='postgres_hr')
    host = params['login_host'] or params['login_unix_socket']
    if host:
        kwargs['host'] = host
    if params['login_password']:
        kwargs['password'] = params['login_password']

    attempts = params['connect_retries']
    last_error = None
    for attempt in range(1, attempts + 1):
        try:
            return psycopg2.connect(**kwargs)
        except psycopg2.OperationalError as exc:
            last_error = exc
            if is_permanent_connect_error(exc):
                raise ConnectError('Cannot connect to %s: %s' % (
                    describe_target(params), first_line(exc)))
            if attempt < attempts:
                sleep(params['connect_retry_delay'])
    raise ConnectError('Cannot connect to %s after %d attempts, %.1f s apart; last error: %s' % (
        describe_target(params), attempts, params['connect_retry_delay'], first_line(last_error)))


def first_line(error: Exception | None) -> str:
    """libpq errors span lines (one per address tried); the first says what happened."""
    text = str(error).strip()
    return text.splitlines()[0] if text else repr(error)


def quote_ident(name: str, conn: 'psycopg2.extensions.connection') -> str:
    """Quote an identifier with the server's own rules."""
    return psycopg2.extensions.quote_ident(name, conn)
