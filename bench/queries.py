"""The application's four mandatory queries, timed as a read-only login role over TCP.

Each query is run and fully fetched, as the application would; the time is the median of
several runs after one warm-up. The plan shape is the tree of node types from EXPLAIN, and
the server time is EXPLAIN ANALYZE's execution time (no transfer to the client).
"""

from __future__ import annotations

import secrets
import statistics
import time
from typing import Any, NamedTuple

from server import BenchServer

READER = 'bench_reader'
MANDATORY = (
    ('hired in the last 6 months',
     "SELECT * FROM employees WHERE hire_date >= CURRENT_DATE - INTERVAL '6 months'"),
    ('Engineering earning > 120000',
     "SELECT * FROM employees WHERE department = 'Engineering' AND salary_usd > 120000"),
    ('on Parental Leave', "SELECT * FROM employees WHERE leave_type = 'Parental Leave'"),
    ('managed by John Doe', "SELECT * FROM employees WHERE manager_name = 'John Doe'"),
)


class QueryTiming(NamedTuple):
    label: str
    rows: int
    median_ms: float        # execute and fetch every row, as the client sees it
    server_ms: float        # EXPLAIN ANALYZE execution time, median
    plan: str


def create_reader(server: BenchServer, db: str) -> str:
    """A LOGIN role with SELECT on employees only; returns its password."""
    password = secrets.token_urlsafe(18)
    conn = server.connect(db)
    try:
        with conn, conn.cursor() as cur:
            cur.execute('DROP ROLE IF EXISTS %s' % READER)
            cur.execute('CREATE ROLE %s LOGIN PASSWORD %%s' % READER, (password,))
            cur.execute('GRANT CONNECT ON DATABASE "%s" TO %s' % (db, READER))
            cur.execute('GRANT USAGE ON SCHEMA public TO %s' % READER)
            cur.execute('GRANT SELECT ON employees TO %s' % READER)
    finally:
        conn.close()
    return password


def drop_reader(server: BenchServer, db: str) -> None:
    conn = server.connect(db)
    try:
        with conn, conn.cursor() as cur:
            cur.execute('DROP OWNED BY %s' % READER)
            cur.execute('DROP ROLE %s' % READER)
    finally:
        conn.close()


def plan_shape(node: dict[str, Any]) -> str:
    """'Bitmap Heap Scan > Bitmap Index Scan (idx_x)': node types, parents first."""
    label = node['Node Type']
    if node.get('Index Name'):
        label += ' (%s)' % node['Index Name']
    children = [plan_shape(child) for child in node.get('Plans', [])]
    if not children:
        return label
    if len(children) == 1:
        return '%s > %s' % (label, children[0])
    return '%s > [%s]' % (label, ', '.join(children))


def time_query(cur: Any, sql: str, runs: int) -> tuple[int, float]:
    cur.execute(sql)
    rows = len(cur.fetchall())
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        cur.execute(sql)
        cur.fetchall()
        timings.append(time.perf_counter() - started)
    return rows, statistics.median(timings) * 1000


def server_time(cur: Any, sql: str, runs: int) -> tuple[float, str]:
    timings, plan = [], ''
    for _ in range(runs):
        cur.execute('EXPLAIN (ANALYZE, FORMAT JSON) ' + sql)
        explained = cur.fetchone()[0][0]
        timings.append(explained['Execution Time'])
        plan = plan_shape(explained['Plan'])
    return statistics.median(timings), plan


def time_mandatory_queries(server: BenchServer, db: str, runs: int = 5) -> list[QueryTiming]:
    password = create_reader(server, db)
    conn = server.tcp_connect(db, READER, password)
    conn.set_session(readonly=True, autocommit=True)
    timings = []
    try:
        with conn.cursor() as cur:
            for label, sql in MANDATORY:
                rows, median_ms = time_query(cur, sql, runs)
                server_ms, plan = server_time(cur, sql, runs)
                timings.append(QueryTiming(label, rows, median_ms, server_ms, plan))
    finally:
        conn.close()
        drop_reader(server, db)
    return timings
