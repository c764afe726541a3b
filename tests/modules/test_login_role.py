"""library/postgres_hr_login_role.py against a real server started with log_statement=all."""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import sys
import uuid

import psycopg2
import psycopg2.extras
import pytest

from conftest import REPO, ThrowawayCluster, load_module_utils, run_module

MODULE = 'postgres_hr_login_role'
SCRAM = re.compile(r'^SCRAM-SHA-256\$(\d+):([^$]+)\$([^:]+):(.+)$')


def load_login_role_module():
    """The module's own file, for its verifier function; its helper import is satisfied here."""
    sys.modules.setdefault('ansible.module_utils.postgres_hr_db', load_module_utils())
    path = REPO / 'library' / (MODULE + '.py')
    spec = importlib.util.spec_from_file_location('postgres_hr_login_role_under_test', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def new_password() -> str:
    """Unique per call, so a count in the shared server log belongs to one test."""
    return 'Pw-' + uuid.uuid4().hex


def superuser_sql(cluster: ThrowawayCluster, sql: str, params: tuple = ()) -> list[tuple]:
    conn = cluster.connect()
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params or None)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def can_log_in(cluster: ThrowawayCluster, database: str, role: str, password: str) -> bool:
    """Log in over TCP, where the test cluster demands SCRAM."""
    try:
        conn = psycopg2.connect(host='127.0.0.1', port=cluster.port, dbname=database,
                                user=role, password=password, connect_timeout=5)
    except psycopg2.OperationalError as exc:
        assert 'password authentication failed' in str(exc)
        return False
    conn.close()
    return True


def stored_password(cluster: ThrowawayCluster, role: str) -> str | None:
    rows = superuser_sql(cluster, 'SELECT rolpassword FROM pg_authid WHERE rolname = %s',
                         (role,))
    return rows[0][0] if rows else None


def role_row(cluster: ThrowawayCluster, role: str) -> dict | None:
    rows = superuser_sql(
        cluster,
        "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, "
        "rolbypassrls, rolinherit, rolconnlimit, "
        "coalesce(rolvaliduntil, 'infinity') = 'infinity' FROM pg_authid WHERE rolname = %s",
        (role,))
    if not rows:
        return None
    keys = ('login', 'superuser', 'createdb', 'createrole', 'replication', 'bypassrls',
            'inherit', 'connection_limit', 'never_expires')
    return dict(zip(keys, rows[0]))


def role_settings(cluster: ThrowawayCluster, role: str) -> dict[str, str]:
    rows = superuser_sql(
        cluster,
        "SELECT s.setconfig FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole "
        "WHERE r.rolname = %s AND s.setdatabase = 0", (role,))
    entries = rows[0][0] if rows else []
    return dict(entry.split('=', 1) for entry in entries)


@pytest.fixture
def role(pg_cluster: ThrowawayCluster):
    """A role name no other test uses; the role is dropped afterwards if it was made."""
    name = 'hr_test_' + uuid.uuid4().hex[:10]
    yield name
    superuser_sql(pg_cluster, 'DROP ROLE IF EXISTS "%s"' % name)


@pytest.fixture
def ensure(pg_cluster: ThrowawayCluster, database: str, role: str):
    """Run the module for the test's role; keyword arguments are module options."""
    def run(check_mode: bool = False, diff: bool = False, **options):
        args = dict(pg_cluster.login_args(database), name=role)
        args.update(options)
        return run_module(MODULE, args, check_mode=check_mode, diff=diff)
    return run


READ_ONLY_SETTINGS = {'statement_timeout': '30s', 'default_transaction_read_only': 'on'}


def test_created_role_logs_in_with_its_password_and_not_another(
        pg_cluster, database, role, ensure):
    password = new_password()
    result = ensure(password=password, settings=READ_ONLY_SETTINGS)

    assert not result.failed, result
    assert result['changed'] and result['password_changed']
    assert result['role'] == role
    assert can_log_in(pg_cluster, database, role, password)
    assert not can_log_in(pg_cluster, database, role, password + 'x')
    assert not can_log_in(pg_cluster, database, role, new_password())


def test_created_role_has_the_fixed_attributes_and_settings(pg_cluster, database, role,
                                                            ensure):
    password = new_password()
    result = ensure(password=password, connection_limit=7, settings=READ_ONLY_SETTINGS)

    assert role_row(pg_cluster, role) == dict(
        login=True, superuser=False, createdb=False, createrole=False, replication=False,
        bypassrls=False, inherit=True, connection_limit=7, never_expires=True)
    assert role_settings(pg_cluster, role) == READ_ONLY_SETTINGS
    assert result['settings'] == READ_ONLY_SETTINGS
    assert result['attributes']['connection_limit'] == 7
    assert result['attributes']['valid_until'] == 'infinity'

    conn = psycopg2.connect(host='127.0.0.1', port=pg_cluster.port, dbname=database,
                            user=role, password=password)
    with conn.cursor() as cur:
        cur.execute('SHOW statement_timeout')
        assert cur.fetchone() == ('30s',)
        cur.execute('SHOW default_transaction_read_only')
        assert cur.fetchone() == ('on',)
    conn.close()


def test_rerun_with_the_same_password_changes_nothing(role, ensure):
    password = new_password()
    ensure(password=password, settings=READ_ONLY_SETTINGS)

    again = ensure(password=password, settings=READ_ONLY_SETTINGS)

    assert not again.failed, again
    assert again['changed'] is False
    assert again['password_changed'] is False
    assert again['queries'] == []


def test_new_password_replaces_the_old_one(pg_cluster, database, role, ensure):
    old, new = new_password(), new_password()
    ensure(password=old)

    result = ensure(password=new)

    assert result['changed'] and result['password_changed']
    assert result['queries'] == ['ALTER ROLE "%s" PASSWORD \'********\'' % role]
    assert can_log_in(pg_cluster, database, role, new)
    assert not can_log_in(pg_cluster, database, role, old)


def test_neither_password_nor_verifier_reaches_the_log_or_the_output(pg_cluster, role, ensure):
    first, second = new_password(), new_password()
    outputs = [ensure(password=first), ensure(password=first), ensure(password=second),
               ensure(password=second, check_mode=True, connection_limit=3, diff=True)]
    verifier = stored_password(pg_cluster, role)
    log = pg_cluster.server_log()

    # The log is really verbose, so an absence below means something.
    assert 'ALTER ROLE "%s" WITH' % role in log or 'CREATE ROLE "%s"' % role in log
    for secret in (first, second):
        assert log.count(secret) == 0
        for output in outputs:
            assert json.dumps(output).count(secret) == 0
    stored_key = SCRAM.match(verifier).group(3)
    assert verifier not in log and stored_key not in log
    for output in outputs:
        assert stored_key not in json.dumps(output)


def test_stored_password_is_a_scram_verifier(pg_cluster, role, ensure):
    ensure(password=new_password())

    verifier = stored_password(pg_cluster, role)

    assert verifier.startswith('SCRAM-SHA-256$4096:')
    assert len(base64.b64decode(SCRAM.match(verifier).group(2))) == 16


@pytest.mark.parametrize('password', ['plain-ascii-password', 'with spaces & \'quotes\' "too"',
                                      r'back\slash%percent$dollar'])
def test_verifier_computed_here_equals_the_one_postgresql_stores(pg_cluster, role, password):
    # PostgreSQL hashes this one itself (so it is in the log: these passwords are throwaway).
    superuser_sql(pg_cluster, 'CREATE ROLE "%s" LOGIN' % role)
    conn = pg_cluster.connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SET password_encryption = 'scram-sha-256'")
        cur.execute('ALTER ROLE "%s" PASSWORD %%s' % role, (password,))
    conn.close()
    stored = stored_password(pg_cluster, role)
    iterations, salt = SCRAM.match(stored).group(1, 2)

    module = load_login_role_module()

    assert module.scram_verifier(password, base64.b64decode(salt), int(iterations)) == stored
    assert module.password_matches(password, stored)
    assert not module.password_matches(password + '!', stored)


@pytest.mark.parametrize('tamper', [
    'ALTER ROLE "{role}" SET statement_timeout = 0',
    'ALTER ROLE "{role}" RESET default_transaction_read_only',
    'ALTER ROLE "{role}" SET work_mem = \'64MB\'',
    'ALTER ROLE "{role}" CONNECTION LIMIT 99',
    'ALTER ROLE "{role}" CREATEDB',
    'ALTER ROLE "{role}" NOINHERIT BYPASSRLS',
    'ALTER ROLE "{role}" REPLICATION',
    'ALTER ROLE "{role}" NOLOGIN',
    'ALTER ROLE "{role}" VALID UNTIL \'2001-01-01\'',
    'ALTER ROLE "{role}" PASSWORD \'a-different-password-1\'',
    'ALTER ROLE "{role}" PASSWORD NULL',
])
def test_tampering_is_repaired(pg_cluster, database, role, ensure, tamper):
    password = new_password()
    ensure(password=password, connection_limit=5, settings=READ_ONLY_SETTINGS)
    wanted_row = role_row(pg_cluster, role)
    superuser_sql(pg_cluster, tamper.format(role=role))

    repaired = ensure(password=password, connection_limit=5, settings=READ_ONLY_SETTINGS)

    assert not repaired.failed, repaired
    assert repaired['changed'] is True
    assert repaired['password_changed'] is ('PASSWORD' in tamper)
    assert role_row(pg_cluster, role) == wanted_row
    assert role_settings(pg_cluster, role) == READ_ONLY_SETTINGS
    assert can_log_in(pg_cluster, database, role, password)
    assert ensure(password=password, connection_limit=5,
                  settings=READ_ONLY_SETTINGS)['changed'] is False


def open_replication_connection(cluster: ThrowawayCluster, role: str, password: str):
    """A walsender connection over TCP, as a standby or pg_basebackup opens one."""
    return psycopg2.connect(host='127.0.0.1', port=cluster.port, user=role, password=password,
                            connect_timeout=5,
                            connection_factory=psycopg2.extras.PhysicalReplicationConnection)


def test_replication_role_may_stream_and_a_login_role_may_not(pg_cluster, role, ensure):
    password = new_password()
    result = ensure(password=password, replication=True, member_of=[])

    assert not result.failed, result
    assert result['attributes']['replication'] is True
    assert role_row(pg_cluster, role)['replication'] is True
    conn = open_replication_connection(pg_cluster, role, password)
    try:
        with conn.cursor() as cur:
            # The first command of every standby: the cluster's identity and WAL position.
            cur.execute('IDENTIFY_SYSTEM')
            system_identifier = cur.fetchone()[0]
    finally:
        conn.close()
    assert system_identifier == str(superuser_sql(
        pg_cluster, 'SELECT system_identifier FROM pg_control_system()')[0][0])

    ensure(password=password)
    assert role_row(pg_cluster, role)['replication'] is False
    with pytest.raises(psycopg2.OperationalError, match='replication|WAL sender'):
        open_replication_connection(pg_cluster, role, password).close()


def test_replication_attribute_is_granted_once_and_taken_back(pg_cluster, role, ensure):
    password = new_password()
    ensure(password=password)

    granted = ensure(password=password, replication=True)
    again = ensure(password=password, replication=True)
    revoked = ensure(password=password, replication=False)

    assert granted['changed'] and not granted['password_changed']
    assert any('REPLICATION' in query and 'NOREPLICATION' not in query
               for query in granted['queries'])
    assert again['changed'] is False and again['queries'] == []
    assert revoked['changed'] and any('NOREPLICATION' in query for query in revoked['queries'])
    assert role_row(pg_cluster, role)['replication'] is False


def test_md5_password_is_replaced_by_a_verifier(pg_cluster, database, role, ensure):
    password = new_password()
    ensure(password=password)
    conn = pg_cluster.connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SET password_encryption = 'md5'")
        cur.execute('ALTER ROLE "%s" PASSWORD %%s' % role, (password,))
    conn.close()
    assert stored_password(pg_cluster, role).startswith('md5')

    result = ensure(password=password)

    assert result['changed'] and result['password_changed']
    assert stored_password(pg_cluster, role).startswith('SCRAM-SHA-256$')
    assert can_log_in(pg_cluster, database, role, password)


def test_check_mode_creates_nothing(pg_cluster, role, ensure):
    result = ensure(check_mode=True, password=new_password(), settings=READ_ONLY_SETTINGS)

    assert not result.failed, result
    assert result['changed'] and result['password_changed']
    assert result['queries'][0].startswith('CREATE ROLE "%s" WITH LOGIN' % role)
    assert result['queries'][-1] == 'ALTER ROLE "%s" PASSWORD \'********\'' % role
    assert 'would be created' in result['msg']
    assert role_row(pg_cluster, role) is None


def test_check_mode_repairs_nothing(pg_cluster, database, role, ensure):
    password = new_password()
    ensure(password=password, settings=READ_ONLY_SETTINGS)
    superuser_sql(pg_cluster, 'ALTER ROLE "%s" CREATEDB CONNECTION LIMIT 99' % role)
    superuser_sql(pg_cluster, 'ALTER ROLE "%s" SET statement_timeout = 0' % role)
    before = (role_row(pg_cluster, role), role_settings(pg_cluster, role),
              stored_password(pg_cluster, role))

    result = ensure(check_mode=True, password=new_password(), settings=READ_ONLY_SETTINGS)

    assert result['changed'] and result['password_changed']
    assert len(result['queries']) == 3
    assert (role_row(pg_cluster, role), role_settings(pg_cluster, role),
            stored_password(pg_cluster, role)) == before
    assert can_log_in(pg_cluster, database, role, password)


def test_diff_shows_attributes_and_settings_but_only_whether_the_password_changed(role,
                                                                                  ensure):
    password = new_password()
    created = ensure(diff=True, password=password, settings={'statement_timeout': '30s'})
    changed = ensure(diff=True, password=new_password(), connection_limit=4,
                     settings={'lock_timeout': '5s'})

    assert created['diff']['before'] == {'exists': False}
    assert created['diff']['after']['password'] == 'changed'
    before, after = changed['diff']['before'], changed['diff']['after']
    assert before['attributes']['connection_limit'] == -1
    assert after['attributes']['connection_limit'] == 4
    assert before['settings'] == {'statement_timeout': '30s'}
    assert after['settings'] == {'lock_timeout': '5s'}
    assert before['password'] == 'unchanged' and after['password'] == 'changed'
    assert ensure(diff=True, password=password)['diff']['after']['password'] == 'changed'
    unchanged = ensure(diff=True, password=password)['diff']
    assert unchanged['before'] == unchanged['after']
    assert unchanged['after']['password'] == 'unchanged'


def test_nologin_owner_role_has_no_password(pg_cluster, role, ensure):
    result = ensure(login=False)

    assert not result.failed, result
    assert result['changed'] and not result['password_changed']
    assert role_row(pg_cluster, role)['login'] is False
    assert stored_password(pg_cluster, role) is None
    assert ensure(login=False)['changed'] is False


def test_nologin_role_loses_a_stored_password(pg_cluster, role, ensure):
    ensure(password=new_password())

    result = ensure(login=False)

    assert result['changed'] and result['password_changed']
    assert result['queries'] == ['ALTER ROLE "%s" WITH NOLOGIN' % role,
                                 'ALTER ROLE "%s" PASSWORD NULL' % role]
    assert stored_password(pg_cluster, role) is None


def test_nologin_role_with_a_password_is_refused(pg_cluster, role, ensure):
    password = new_password()

    result = ensure(login=False, password=password)

    assert result.failed
    assert 'NOLOGIN role has no password' in result['msg']
    assert password not in json.dumps(result)
    assert role_row(pg_cluster, role) is None


def test_short_password_is_refused_without_showing_it(pg_cluster, role, ensure):
    result = ensure(password='Short-pw-1')

    assert result.failed
    assert 'shorter than 12 characters' in result['msg']
    assert 'Short-pw-1' not in json.dumps(result)
    assert role_row(pg_cluster, role) is None


def test_missing_password_of_a_login_role_is_refused(ensure):
    result = ensure()

    assert result.failed
    assert 'password is required when login is true' in result['msg']


def test_non_ascii_password_is_refused(pg_cluster, role, ensure):
    result = ensure(password='pässwörd-with-umlauts')

    assert result.failed
    assert 'non-ASCII' in result['msg']
    assert 'pässwörd' not in json.dumps(result, ensure_ascii=False)
    assert role_row(pg_cluster, role) is None


@pytest.mark.parametrize('options, message', [
    (dict(name='Upper'), 'name must match'),
    (dict(name='pg_mine'), 'is reserved'),
    (dict(connection_limit=-2), 'connection_limit must be -1'),
    (dict(settings={'statement timeout': '1s'}), 'is not a parameter name'),
    (dict(settings={'statement_timeout': None}), 'has no value'),
])
def test_invalid_options_are_refused(ensure, options, message):
    result = ensure(password=new_password(), **options)

    assert result.failed
    assert message in result['msg']


def test_unknown_setting_fails_naming_the_database_and_changes_nothing(pg_cluster, database,
                                                                       role, ensure):
    result = ensure(password=new_password(), settings={'no_such_parameter': '1'})

    assert result.failed
    assert 'no_such_parameter' in result['msg']
    assert 'database "%s"' % database in result['msg']
    assert 'port %d' % pg_cluster.port in result['msg']
    assert role_row(pg_cluster, role) is None


def test_yaml_booleans_and_numbers_become_setting_text(pg_cluster, role, ensure):
    ensure(password=new_password(),
           settings={'default_transaction_read_only': True, 'statement_timeout': 30000})

    assert role_settings(pg_cluster, role) == {'default_transaction_read_only': 'on',
                                               'statement_timeout': '30000'}


def test_valid_until_is_set_and_compared_in_utc(pg_cluster, role, ensure):
    password = new_password()
    result = ensure(password=password, valid_until='2031-06-30 12:00')

    assert result['attributes']['valid_until'] == '2031-06-30 12:00:00+00'
    assert ensure(password=password, valid_until='2031-06-30 14:00+02')['changed'] is False
    assert ensure(password=password)['changed'] is True
    assert role_row(pg_cluster, role)['never_expires'] is True


def test_invalid_valid_until_is_refused(role, ensure):
    result = ensure(password=new_password(), valid_until='next tuesday-ish')

    assert result.failed
    assert 'valid_until "next tuesday-ish"' in result['msg']


def test_non_superuser_login_is_refused(pg_cluster, database, role, ensure):
    helper = 'hr_test_helper_' + uuid.uuid4().hex[:8]
    superuser_sql(pg_cluster, 'CREATE ROLE "%s" LOGIN CREATEROLE' % helper)
    try:
        result = ensure(password=new_password(), login_user=helper)
    finally:
        superuser_sql(pg_cluster, 'DROP ROLE "%s"' % helper)

    assert result.failed
    assert 'not a superuser' in result['msg']
    assert role_row(pg_cluster, role) is None


def test_the_connecting_superuser_itself_is_refused(pg_cluster, database):
    args = dict(pg_cluster.login_args(database), name='postgres', password=new_password())

    result = run_module(MODULE, args)

    assert result.failed
    assert 'the role this module connects as' in result['msg']
    assert role_row(pg_cluster, 'postgres')['superuser'] is True


def test_verifier_stays_out_of_a_cluster_that_logs_and_tracks_everything():
    # Each of these would record the statement carrying the verifier despite
    # log_statement = 'none': sampling is decided when a transaction starts, and
    # pg_stat_statements keeps utility statements verbatim.
    cluster = ThrowawayCluster().init()
    with open(cluster.datadir / 'postgresql.conf', 'a') as conf:
        conf.write("shared_preload_libraries = 'pg_stat_statements'\n"
                   "log_transaction_sample_rate = 1\n"
                   "log_min_duration_statement = 0\n"
                   "log_min_error_statement = debug5\n"
                   "debug_print_parse = on\n")
    cluster.start()
    try:
        superuser_sql(cluster, 'CREATE EXTENSION pg_stat_statements')
        password = new_password()
        args = dict(cluster.login_args('postgres'), name='hr_watched', password=password)

        result = run_module(MODULE, args)

        assert result['changed'], result
        verifier = stored_password(cluster, 'hr_watched')
        tracked = ' '.join(row[0] for row in superuser_sql(
            cluster, 'SELECT query FROM pg_stat_statements'))
        assert 'hr_watched' in tracked, 'pg_stat_statements saw the other statements'
        for secret in (password, verifier, SCRAM.match(verifier).group(3)):
            assert secret not in cluster.server_log()
            assert secret not in tracked
    finally:
        cluster.destroy()


def memberships(cluster: ThrowawayCluster, role: str) -> list[str]:
    return sorted(row[0] for row in superuser_sql(
        cluster, "SELECT m.roleid::regrole::text FROM pg_auth_members AS m "
                 "WHERE m.member = %s::regrole", (role,)))


def database_settings(cluster: ThrowawayCluster, role: str) -> list[tuple]:
    return superuser_sql(
        cluster, "SELECT d.datname, s.setconfig FROM pg_db_role_setting AS s "
                 "JOIN pg_database AS d ON d.oid = s.setdatabase "
                 "WHERE s.setrole = %s::regrole", (role,))


def test_member_of_empty_revokes_every_membership_whoever_granted_it(pg_cluster, role,
                                                                     ensure):
    # A membership granted by another role is the case PostgreSQL 16 and later only revoke
    # when the statement names that grantor.
    password = new_password()
    ensure(password=password)
    granter = 'hr_test_granter_' + uuid.uuid4().hex[:8]
    superuser_sql(pg_cluster, 'CREATE ROLE "%s" NOLOGIN' % granter)
    superuser_sql(pg_cluster, 'GRANT pg_read_all_data TO "%s" WITH ADMIN OPTION' % granter)
    superuser_sql(pg_cluster, 'GRANT pg_monitor TO "%s"' % role)
    superuser_sql(pg_cluster, 'GRANT pg_read_all_data TO "%s" GRANTED BY "%s"' % (role, granter))
    try:
        assert memberships(pg_cluster, role) == ['pg_monitor', 'pg_read_all_data']

        result = ensure(password=password, member_of=[], diff=True)

        assert not result.failed, result
        assert result['changed'] and not result['password_changed']
        assert memberships(pg_cluster, role) == []
        assert result['member_of'] == []
        assert result['diff']['before']['member_of'] == ['pg_monitor', 'pg_read_all_data']
        assert result['diff']['after']['member_of'] == []
        assert any(query.startswith('REVOKE "pg_read_all_data" FROM "%s" GRANTED BY' % role)
                   for query in result['queries'])
        assert ensure(password=password, member_of=[])['changed'] is False
    finally:
        superuser_sql(pg_cluster, 'DROP ROLE IF EXISTS "%s"' % role)
        superuser_sql(pg_cluster, 'DROP ROLE "%s"' % granter)


def test_member_of_grants_the_listed_roles_and_omitting_it_leaves_them(pg_cluster, role,
                                                                       ensure):
    password = new_password()

    created = ensure(password=password, member_of=['pg_read_all_settings'])
    untouched = ensure(password=password)

    assert created['changed'] and created['member_of'] == ['pg_read_all_settings']
    assert memberships(pg_cluster, role) == ['pg_read_all_settings']
    assert untouched['changed'] is False
    assert untouched['member_of'] == ['pg_read_all_settings']


def test_member_of_a_missing_role_fails_and_changes_nothing(pg_cluster, role, ensure):
    result = ensure(password=new_password(), member_of=['hr_no_such_group'])

    assert result.failed
    assert 'hr_no_such_group' in result['msg'] and 'do not exist' in result['msg']
    assert role_row(pg_cluster, role) is None


@pytest.mark.parametrize('member_of, message', [
    (['Bad-Name'], 'is not a role name'),
    (['{role}'], 'lists the role'),
])
def test_invalid_member_of_is_refused(role, ensure, member_of, message):
    result = ensure(password=new_password(),
                    member_of=[entry.format(role=role) for entry in member_of])

    assert result.failed
    assert message in result['msg']


def test_settings_for_one_database_are_removed(pg_cluster, database, role, ensure):
    # The role's own ALTER ROLE ... IN DATABASE would override its role-wide limits there.
    password = new_password()
    ensure(password=password, settings=READ_ONLY_SETTINGS)
    superuser_sql(pg_cluster, 'ALTER ROLE "%s" IN DATABASE "%s" SET statement_timeout = 0'
                  % (role, database))

    repaired = ensure(password=password, settings=READ_ONLY_SETTINGS, diff=True)

    assert repaired['changed'] and not repaired['password_changed']
    assert repaired['queries'] == ['ALTER ROLE "%s" IN DATABASE "%s" RESET ALL'
                                   % (role, database)]
    assert repaired['diff']['before']['database_settings'] == {
        database: {'statement_timeout': '0'}}
    assert 'database_settings' not in repaired['diff']['after']
    assert database_settings(pg_cluster, role) == []
    assert role_settings(pg_cluster, role) == READ_ONLY_SETTINGS
    assert ensure(password=password, settings=READ_ONLY_SETTINGS)['changed'] is False
