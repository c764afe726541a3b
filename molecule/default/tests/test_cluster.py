"""The cluster runs Debian's default PostgreSQL major version under the platform's manager."""

from __future__ import annotations

import json
from typing import Any, Callable

from conftest import CLUSTER, PORT, Platform, PsqlResult


def test_cluster_is_online_with_debian_default_version(host: Any, platform: Platform) -> None:
    # pg_lsclusters --json prints numbers as strings or integers depending on the field.
    found = [(int(c['version']), c['cluster'], int(c['port']), int(c['running']))
             for c in json.loads(host.check_output('pg_lsclusters --json'))]
    expected = (platform.postgresql_major, CLUSTER, PORT, 1)
    assert expected in found, (f'expected {platform.postgresql_major}/{CLUSTER} online on port '
                               f'{PORT}, found (version, cluster, port, running) {found}')


def test_server_reports_the_major_version(platform: Platform,
                                          superuser_sql: Callable[..., PsqlResult]) -> None:
    version_num = int(superuser_sql('SHOW server_version_num').stdout.strip())
    assert version_num // 10000 == platform.postgresql_major


def test_cluster_runs_under_the_platform_service_manager(host: Any, platform: Platform) -> None:
    if platform.systemd:
        service = host.service(platform.service)
        assert service.is_running, f'{platform.service} is not active'
        assert service.is_enabled, f'{platform.service} would not start at boot'
    else:
        status = host.run('pg_ctlcluster %s %s status', str(platform.postgresql_major), CLUSTER)
        assert status.rc == 0, status.stdout + status.stderr
