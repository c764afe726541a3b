"""The three ways of loading the same employees: the seed module, psql \\copy, executemany.

Each load goes into a fresh database holding the migrated table (primary key and the four
secondary indexes), after a CHECKPOINT, over TCP on 127.0.0.1, and only the load is timed.
"""

from __future__ import annotations

import csv
import json
import pathlib
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Iterator, NamedTuple

import yaml

from server import REPO, BenchServer

RUNNER = REPO / 'tests' / 'module_runner.py'
MODULE = REPO / 'library' / 'postgres_hr_seed.py'
ROLE_DEFAULTS = REPO / 'roles' / 'postgres_hr' / 'defaults' / 'main.yml'
COLUMNS = ('first_name', 'last_name', 'department', 'role', 'employment_status', 'hire_date',
           'leave_type', 'salary_local', 'salary_usd', 'manager_name')
INSERT = 'INSERT INTO employees (%s) VALUES (%s)' % (
    ', '.join(COLUMNS), ', '.join(['%s'] * len(COLUMNS)))


class ModuleRun(NamedTuple):
    seconds: float          # wall time of the module process, start-up included
    peak_rss_mib: float     # the module process's peak resident memory (VmHWM)
    result: dict[str, Any]


class PeakMemory:
    """Follows a child's VmHWM until it exits.

    VmHWM belongs to the address space the child got at exec, so it is the module's own
    peak. ru_maxrss from wait4 would also count the bench's memory, which the child shares
    between fork and exec.
    """

    def __init__(self, pid: int) -> None:
        self.status = pathlib.Path('/proc/%d/status' % pid)
        self.peak_kib = 0
        self.thread = threading.Thread(target=self.follow, daemon=True)
        self.thread.start()

    def follow(self) -> None:
        while True:
            try:
                text = self.status.read_text()
            except OSError:
                return
            fields = [line.split()[1] for line in text.splitlines()
                      if line.startswith('VmHWM:')]
            if not fields:  # a zombie has no memory left to report
                return
            self.peak_kib = max(self.peak_kib, int(fields[0]))
            time.sleep(0.01)

    def mib(self) -> float:
        self.thread.join()
        return self.peak_kib / 1024


def role_scenarios() -> list[dict[str, Any]]:
    """The scenarios the role hands the module, so the module does its full work."""
    defaults = yaml.safe_load(ROLE_DEFAULTS.read_text())
    return [{key: s[key] for key in ('name', 'predicate', 'minimum')}
            for s in defaults['postgres_hr_scenarios']]


def seed_with_module(server: BenchServer, db: str, rows: int) -> ModuleRun:
    """Run the real module in a child process, as Ansible would, and measure that child."""
    payload = dict(server.module_login(db), rows=rows, scenarios=role_scenarios(),
                   _ansible_check_mode=False, _ansible_diff=False)
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        proc = subprocess.Popen([sys.executable, str(RUNNER), str(MODULE)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors)
        memory = PeakMemory(proc.pid)
        proc.stdin.write(json.dumps(payload).encode())
        proc.stdin.close()
        output = proc.stdout.read()
        proc.wait()
        seconds = time.perf_counter() - started
        errors.seek(0)
        stderr = errors.read().decode(errors='replace')
    try:
        result = json.loads(output)
    except json.JSONDecodeError:
        raise RuntimeError('the seed module printed no result (exit %d): %s'
                           % (proc.returncode, stderr[-2000:]))
    if result.get('failed'):
        raise RuntimeError('the seed module failed: %s' % result.get('msg'))
    return ModuleRun(seconds, memory.mib(), result)


def dump_csv(server: BenchServer, db: str, path: pathlib.Path) -> None:
    """The rows the module seeded, in id order, as the CSV file the other loaders read."""
    server.psql(db, "\\copy (SELECT %s FROM employees ORDER BY employee_id) TO '%s' CSV"
                % (', '.join(COLUMNS), path))


def load_with_psql(server: BenchServer, db: str, path: pathlib.Path) -> float:
    """Wall time of `psql -c '\\copy employees FROM file CSV'`."""
    started = time.perf_counter()
    server.psql(db, "\\copy employees (%s) FROM '%s' CSV" % (', '.join(COLUMNS), path))
    return time.perf_counter() - started


def csv_rows(path: pathlib.Path) -> Iterator[tuple[str | None, ...]]:
    """Rows of the dump; an empty field is NULL (the data have no empty strings)."""
    with path.open(newline='') as handle:
        for row in csv.reader(handle):
            yield tuple(value if value != '' else None for value in row)


def load_with_executemany(server: BenchServer, db: str, path: pathlib.Path) -> float:
    """Time of psycopg2's executemany of one INSERT per row, and the commit.

    The rows stream from the file: reading them is a small part of the time, and holding
    them would grow the bench process that the module runs are started from.
    """
    conn = server.tcp_connect(db)
    try:
        started = time.perf_counter()
        with conn.cursor() as cur:
            cur.executemany(INSERT, csv_rows(path))
        conn.commit()
        return time.perf_counter() - started
    finally:
        conn.close()


def count_rows(server: BenchServer, db: str) -> int:
    return server.execute('SELECT count(*) FROM employees', db)[0][0]
