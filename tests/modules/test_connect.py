"""Connection retries of module_utils/postgres_hr_db.py against a real server."""

from __future__ import annotations

import threading
import time

import pytest

from conftest import ThrowawayCluster, free_port, load_module_utils


def _params(cluster: ThrowawayCluster, **overrides):
    lib = load_module_utils()
    params = dict(login_host='', login_password='', connect_timeout=2, connect_retries=5,
                  connect_retry_delay=1.0, **cluster.login_args('postgres'))
    params.update(overrides)
    return lib, params


def test_server_that_comes_up_late_is_reached_within_retries():
    cluster = ThrowawayCluster().init()
    try:
        lib, params = _params(cluster, connect_retries=15, connect_retry_delay=1.0)
        starter = threading.Timer(3.0, cluster.start)
        starter.start()
        began = time.monotonic()
        conn = lib.connect(params)
        waited = time.monotonic() - began
        starter.join()
        with conn.cursor() as cur:
            cur.execute('SELECT 1')
            assert cur.fetchone() == (1,)
        conn.close()
        assert waited >= 2.5, 'connected before the server was started?'
    finally:
        cluster.destroy()


def test_server_that_never_comes_up_fails_after_the_configured_attempts():
    port = free_port()
    cluster = ThrowawayCluster(port=port)
    try:
        lib, params = _params(cluster, login_password='s3cret-never-shown', connect_retries=3,
                              connect_retry_delay=0.5)
        slept = []
        with pytest.raises(lib.ConnectError) as caught:
            lib.connect(params, sleep=slept.append)
        message = str(caught.value)
        assert slept == [0.5, 0.5], 'three attempts mean two pauses'
        assert 'after 3 attempts' in message
        assert 'database "postgres"' in message and 'port %d' % port in message
        assert str(cluster.socket_dir) in message
        assert 's3cret-never-shown' not in message
    finally:
        cluster.destroy()


def test_wrong_password_is_not_retried(pg_cluster):
    conn = pg_cluster.connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE ROLE connect_probe LOGIN PASSWORD 'right-password'")
    try:
        lib, params = _params(pg_cluster, login_host='127.0.0.1', login_unix_socket='',
                              login_user='connect_probe', login_password='wrong-password')
        slept = []
        with pytest.raises(lib.ConnectError) as caught:
            lib.connect(params, sleep=slept.append)
        assert slept == []
        assert 'password authentication failed' in str(caught.value)
        assert 'wrong-password' not in str(caught.value)
    finally:
        with conn.cursor() as cur:
            cur.execute('DROP ROLE connect_probe')
        conn.close()
