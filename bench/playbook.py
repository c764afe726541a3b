"""Wall time of a no-op re-run of site.yml on this machine, next to empty playbooks.

site.yml runs against a cluster of its own (`hr_bench`, on a free port) through a private
inventory: the local inventory's hosts file, group_vars naming the cluster and port, and a
vault made for the run by scripts/bootstrap-vault. One run converges; the timed re-runs then
have nothing to change. The cluster is dropped afterwards. Needs root, as `make site` does.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import NamedTuple

from server import REPO

CLUSTER = 'hr_bench'
BIN = pathlib.Path(sys.executable).parent
RECAP = re.compile(r'^localhost\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=\d+\s+failed=\d+',
                   re.MULTILINE)
# The site play gathers only the service manager; the second empty play does the same.
EMPTY_PLAY = '''---
- name: Do nothing
  hosts: hr_databases
  gather_facts: false
  tasks: []
'''
EMPTY_PLAY_WITH_FACTS = '''---
- name: Do nothing but gather the facts the site play gathers
  hosts: hr_databases
  gather_facts: true
  gather_subset:
    - "!all"
    - "!min"
    - service_mgr
  tasks: []
'''


TASK_TIME = re.compile(r'^(.+?) -{3,} (\d+\.\d+)s$', re.MULTILINE)
SLOWEST_SHOWN = 8


class SiteTiming(NamedTuple):
    converge_s: float
    noop_s: float           # median of the re-runs
    noop_changed: int       # tasks the re-runs reported changed (0 for a true no-op)
    empty_s: float          # median, no facts
    empty_facts_s: float    # median, with the site play's fact gathering
    tasks: int              # tasks a re-run reports ok
    slowest: list[tuple[str, float]]   # of one more, profiled re-run


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def cluster_majors() -> list[str]:
    out = subprocess.run(['pg_lsclusters', '--json'], capture_output=True, text=True).stdout
    return [str(c['version']) for c in json.loads(out or '[]') if c['cluster'] == CLUSTER]


def drop_cluster() -> None:
    for major in cluster_majors():
        subprocess.run(['pg_dropcluster', '--stop', major, CLUSTER], capture_output=True)


class PrivateInventory:
    """localhost with its own cluster name, port and vault, in a temporary directory."""

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        self.hosts = root / 'inventory' / 'hosts.yml'
        self.vault_pass = root / 'vault_pass'
        group_vars = root / 'inventory' / 'group_vars' / 'all'
        group_vars.mkdir(parents=True)
        shutil.copy(REPO / 'inventories' / 'local' / 'hosts.yml', self.hosts)
        (group_vars / 'main.yml').write_text('---\npostgres_hr_cluster_name: %s\n'
                                             'postgres_hr_port: %d\n' % (CLUSTER, free_port()))
        subprocess.run([str(REPO / 'scripts' / 'bootstrap-vault'), str(self.vault_pass),
                        str(group_vars / 'vault.yml')], check=True, capture_output=True,
                       env=self.env())
        for name, text in (('empty.yml', EMPTY_PLAY), ('empty_facts.yml', EMPTY_PLAY_WITH_FACTS)):
            (root / name).write_text(text)

    def env(self) -> dict[str, str]:
        return dict(os.environ, ANSIBLE_CONFIG=str(REPO / 'ansible.cfg'), ANSIBLE_NOCOLOR='1',
                    ANSIBLE_FORCE_COLOR='0', ANSIBLE_VAULT=str(BIN / 'ansible-vault'),
                    PATH='%s:%s' % (BIN, os.environ.get('PATH', '')))

    def run(self, playbook: pathlib.Path, **env: str) -> tuple[float, str]:
        """Seconds the playbook took and its output; fails loudly on a failed run."""
        started = time.perf_counter()
        proc = subprocess.run([str(BIN / 'ansible-playbook'), str(playbook), '-i',
                               str(self.hosts), '--vault-id', 'bench@%s' % self.vault_pass],
                              cwd=REPO, env=dict(self.env(), **env), capture_output=True,
                              text=True, timeout=1800)
        seconds = time.perf_counter() - started
        if proc.returncode != 0:
            raise RuntimeError('%s failed (exit %d):\n%s' % (
                playbook.name, proc.returncode, (proc.stdout + proc.stderr)[-3000:]))
        return seconds, proc.stdout

    def play(self, playbook: pathlib.Path) -> tuple[float, int, int]:
        """Seconds the playbook took, and the tasks it reported ok and changed."""
        seconds, output = self.run(playbook)
        # A play without tasks or facts prints no host line in its recap.
        recap = RECAP.search(output)
        return seconds, int(recap.group(1)) if recap else 0, int(recap.group(2)) if recap else 0

    def slowest_tasks(self, playbook: pathlib.Path) -> list[tuple[str, float]]:
        """The slowest tasks of one run, from the profile_tasks callback."""
        _, output = self.run(playbook, ANSIBLE_CALLBACKS_ENABLED='ansible.posix.profile_tasks',
                             PROFILE_TASKS_TASK_OUTPUT_LIMIT=str(SLOWEST_SHOWN))
        summary = output[output.rfind('=' * 20):]
        return [(name.strip(), float(seconds))
                for name, seconds in TASK_TIME.findall(summary)][:SLOWEST_SHOWN]


def median_run(inventory: PrivateInventory, playbook: pathlib.Path,
               runs: int) -> tuple[float, int, int]:
    """Median seconds, and the most tasks any run reported ok and changed."""
    results = [inventory.play(playbook) for _ in range(runs)]
    return (statistics.median(s for s, _, _ in results), max(ok for _, ok, _ in results),
            max(changed for _, _, changed in results))


def time_site_noop(runs: int = 3) -> SiteTiming:
    root = pathlib.Path(tempfile.mkdtemp(prefix='postgres_hr_bench_site_'))
    drop_cluster()
    try:
        inventory = PrivateInventory(root)
        converge_s, _, _ = inventory.play(REPO / 'site.yml')
        noop_s, tasks, changed = median_run(inventory, REPO / 'site.yml', runs)
        empty_s, _, _ = median_run(inventory, root / 'empty.yml', runs)
        empty_facts_s, _, _ = median_run(inventory, root / 'empty_facts.yml', runs)
        slowest = inventory.slowest_tasks(REPO / 'site.yml')
    finally:
        drop_cluster()
        shutil.rmtree(root, ignore_errors=True)
    return SiteTiming(converge_s, noop_s, changed, empty_s, empty_facts_s, tasks, slowest)
