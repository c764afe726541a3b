"""A cluster that is down, on a host where the role may not manage the service, fails the
converge after the configured connection attempts, with a message naming the cluster, port and
attempts; once the cluster is started, the same converge succeeds.

The role would start a stopped cluster itself, so these converges set
postgres_hr_manage_service to false: the role then only waits for the cluster.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import yaml

from conftest import (CLUSTER, PORT, PROJECT_DIR, Platform, ansible_playbook, cluster_state,
                      wait_until_ready)

RETRIES = 3
DELAY_S = 1
HANDS_OFF = ('-e', 'postgres_hr_manage_service=false',
             '-e', f'postgres_hr_connect_retries={RETRIES}',
             '-e', f'postgres_hr_connect_retry_delay={DELAY_S}')
# Bounds on the waiting task, for sanity and not as a measurement: RETRIES attempts have
# RETRIES - 1 pauses between them; the upper bound is far above what 3 attempts take (each
# one a `podman exec` of about 2 s here, pg_isready giving up after 5 s) and far below a hang.
WAIT_LOWER_BOUND_S = (RETRIES - 1) * DELAY_S
WAIT_UPPER_BOUND_S = 60


def scenario_names() -> list[str]:
    with (PROJECT_DIR / 'roles' / 'postgres_hr' / 'defaults' / 'main.yml').open(
            encoding='utf-8') as stream:
        return [scenario['name'] for scenario in yaml.safe_load(stream)['postgres_hr_scenarios']]


def seconds(task: dict[str, Any]) -> float:
    duration = task['duration']
    start, end = (datetime.fromisoformat(duration[key].replace('Z', '+00:00'))
                  for key in ('start', 'end'))
    return (end - start).total_seconds()


def test_a_stopped_cluster_fails_after_the_retries_then_converges_once_started(
        host: Any, platform: Platform, running_cluster_afterwards: None) -> None:
    ctl = f'pg_ctlcluster {platform.postgresql_major} {CLUSTER}'
    stop = host.run(f'{ctl} stop')
    assert stop.rc == 0, f'{ctl} stop failed: {stop.stderr}'
    assert not cluster_state(host)['running']

    refused = ansible_playbook(platform, *HANDS_OFF)

    assert refused.returncode != 0, refused.summary()
    messages = [m for m in refused.messages() if 'did not accept connections' in m]
    assert messages, 'no message says the cluster did not accept connections:\n' \
                     + refused.summary()
    for expected in (platform.cluster, f'port {PORT}', f'{RETRIES} attempts'):
        assert expected in messages[-1], f'{expected!r} missing from: {messages[-1]}'
    waits = [task for task, result in refused.results() if 'pg_isready' in result.get('cmd', [])]
    assert waits, f'no task ran pg_isready:\n{refused.summary()}'
    assert WAIT_LOWER_BOUND_S <= seconds(waits[-1]) < WAIT_UPPER_BOUND_S, \
        f'{waits[-1]["name"]} took {seconds(waits[-1]):.1f} s for {RETRIES} attempts'
    assert refused.stats['changed'] == 0, refused.summary()
    assert not cluster_state(host)['running'], \
        'the role started the cluster although postgres_hr_manage_service is false'

    start = host.run(f'{ctl} start')
    assert start.rc == 0, f'{ctl} start failed: {start.stderr}'
    wait_until_ready(host, platform)
    converged = ansible_playbook(platform, *HANDS_OFF)

    assert converged.returncode == 0, converged.summary()
    # The header names the scenario and minimum columns, then one count column per host.
    tables = [m.splitlines() for m in converged.messages()
              if m.split()[:3] == ['scenario', 'minimum', platform.name]]
    assert tables, f'no scenario table in the converge output:\n{converged.summary()}'
    listed = [line.split()[0] for line in tables[-1][1:]]
    assert listed == scenario_names(), f'the table lists {listed}'
