"""`make bench`: how fast the seed module loads employees, and what the data are like to query.

Measured side by side in one run, on one throwaway server that the bench starts and removes:

- the seed module (run as Ansible runs it, in a child process) at each size, against psql
  \\copy of the identical rows as CSV into the same migrated table, and against psycopg2's
  executemany up to 100k rows; medians of --repeats runs, in interleaved order;
- the four mandatory queries at the largest size, as a read-only login role over TCP;
- a no-op re-run of site.yml on this machine next to empty playbooks (needs root).

Progress goes to stderr; the report goes to stdout and, with --output, to a file.
"""

from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import platform
import shutil
import statistics
import sys
import tempfile
import textwrap
from typing import NamedTuple

import ansible
import psycopg2

import loads
import playbook
import queries
from server import BenchServer, migration_files

DB = 'bench_load'
EXECUTEMANY_UP_TO = 100_000
GOAL_COPY_RATIO = 0.5          # module / \copy at the largest size
GOAL_EXECUTEMANY_RATIO = 0.05  # module / executemany at 100k
GOAL_NOOP_RATIO = 5.0          # site.yml no-op re-run / empty playbook


class LoadRow(NamedTuple):
    rows: int
    module_s: float
    module_load_s: float       # the module's own load_seconds: COPY, index builds, ANALYZE
    rows_per_s: float          # rows / module_s
    peak_rss_mib: float
    copy_s: float
    executemany_s: float | None
    runs: dict[str, list[float]]   # every timing, per loader, in run order


def progress(message: str) -> None:
    print('[bench %s] %s' % (datetime.datetime.now().strftime('%H:%M:%S'), message),
          file=sys.stderr, flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--sizes', default='10000,100000,1000000',
                        help='row counts, comma-separated (default: %(default)s)')
    parser.add_argument('--repeats', type=int, default=3,
                        help='timed runs per loader and size; the median is reported')
    parser.add_argument('--query-runs', type=int, default=5,
                        help='timed runs per mandatory query; the median is reported')
    parser.add_argument('--skip-playbook', action='store_true',
                        help='leave out the site.yml no-op timing')
    parser.add_argument('--output', type=pathlib.Path, help='also write the report here')
    return parser.parse_args()


# ---------------------------------------------------------------- measuring

def fresh_database(server: BenchServer) -> str:
    server.drop_database(DB)
    server.create_database(DB)
    server.checkpoint()
    return DB


def measure_size(server: BenchServer, rows: int, repeats: int,
                 csv_path: pathlib.Path) -> LoadRow:
    """Every loader at one size, interleaved, so background noise spreads over all of them."""
    module_runs, copies, executemanys = [], [], []
    for repeat in range(repeats):
        progress('%d rows, run %d of %d: seed module' % (rows, repeat + 1, repeats))
        module_runs.append(loads.seed_with_module(server, fresh_database(server), rows))
        if repeat == 0:
            loads.dump_csv(server, DB, csv_path)
        progress('%d rows, run %d of %d: psql \\copy' % (rows, repeat + 1, repeats))
        copies.append(loads.load_with_psql(server, fresh_database(server), csv_path))
        check_count(server, rows)
        if rows <= EXECUTEMANY_UP_TO:
            progress('%d rows, run %d of %d: executemany' % (rows, repeat + 1, repeats))
            executemanys.append(loads.load_with_executemany(server, fresh_database(server),
                                                            csv_path))
            check_count(server, rows)
    module_s = statistics.median(run.seconds for run in module_runs)
    runs = {'module': [run.seconds for run in module_runs], '\\copy': copies}
    if executemanys:
        runs['execmany'] = executemanys
    return LoadRow(rows, module_s,
                   statistics.median(run.result['load_seconds'] for run in module_runs),
                   rows / module_s, max(run.peak_rss_mib for run in module_runs),
                   statistics.median(copies),
                   statistics.median(executemanys) if executemanys else None, runs)


def check_count(server: BenchServer, rows: int) -> None:
    found = loads.count_rows(server, DB)
    if found != rows:
        raise RuntimeError('expected %d rows after the load, found %d' % (rows, found))


def measure_queries(server: BenchServer, rows: int, runs: int) -> list[queries.QueryTiming]:
    progress('%d rows: seeding for the mandatory queries' % rows)
    loads.seed_with_module(server, fresh_database(server), rows)
    progress('%d rows: timing the mandatory queries' % rows)
    return queries.time_mandatory_queries(server, DB, runs)


# ---------------------------------------------------------------- reporting

def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Columns padded to their widest cell; the first column left-aligned, others right."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]

    def line(cells: list[str]) -> str:
        return '  '.join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()
    return [line(headers), line(['-' * w for w in widths])] + [line(r) for r in rows]


def memory_gib() -> float:
    with open('/proc/meminfo') as meminfo:
        for entry in meminfo:
            if entry.startswith('MemTotal:'):
                return int(entry.split()[1]) / 1024 ** 2
    return 0.0


def machine_lines(server: BenchServer) -> list[str]:
    load = ', '.join('%.2f' % value for value in os.getloadavg())
    server.create_database(DB)
    indexes = server.indexes(DB)
    server.drop_database(DB)
    return [
        'date          %s' % datetime.datetime.now().astimezone().isoformat(timespec='seconds'),
        'machine       %d cores (%s), %.1f GiB memory' % (
            os.cpu_count(), platform.machine(), memory_gib()),
        'system        %s' % platform.platform(),
        'PostgreSQL    %s, throwaway cluster, server defaults (fsync on,' % server.version(),
        '              shared_buffers 128MB); loaders connect over TCP 127.0.0.1',
        'Python        %s (module and bench), ansible-core %s, psycopg2 %s' % (
            platform.python_version(), ansible.__version__, psycopg2.__version__.split()[0]),
        'load average  %s at the start; other work shares these cores' % load,
        'schema        the role\'s migrations %s; employees has %d indexes:' % (
            ', '.join(path.name[:3] for path in migration_files()), len(indexes)),
    ] + textwrap.wrap(', '.join(indexes), 100, initial_indent=' ' * 14,
                      subsequent_indent=' ' * 14)


def load_lines(results: list[LoadRow], repeats: int) -> list[str]:
    rows = []
    for r in results:
        executemany = '%.2f' % r.executemany_s if r.executemany_s is not None else '-'
        versus = '%.3fx' % (r.module_s / r.executemany_s) if r.executemany_s else '-'
        rows.append(['{:,}'.format(r.rows), '%.2f' % r.module_s, '%.2f' % r.module_load_s,
                     '{:,.0f}'.format(r.rows_per_s), '%.2f' % r.copy_s, executemany,
                     '%.2fx' % (r.module_s / r.copy_s), versus, '%.0f' % r.peak_rss_mib])
    return ([('Loading employees into the migrated table over TCP, seconds, median of %d'
              % repeats), ''] + table(
        ['rows', 'module', '(load)', 'rows/s', '\\copy', 'execmany', 'mod/\\copy',
         'mod/execmany', 'peak MiB'], rows) + [
        '', 'Every run, in order (seconds):'] + [
        '  %-10s %s' % ('{:,}'.format(r.rows), '; '.join(
            '%s %s' % (loader, ' '.join('%.2f' % t for t in times))
            for loader, times in r.runs.items())) for r in results] + [
        '',
        'module: wall time of the module process run as Ansible runs it: start-up, COPY,',
        '  index builds, ANALYZE, scenario checks, commit. (load): the module\'s own',
        '  load_seconds (COPY, index builds, ANALYZE). rows/s: rows / module. peak MiB: the',
        '  module process\'s peak resident memory (largest of the runs).',
        '\\copy: wall time of psql -c "\\copy employees (...) FROM file CSV", identical rows.',
        'execmany: psycopg2 cursor.executemany of one INSERT per row, then the commit.'])


def query_lines(rows: int, timings: list[queries.QueryTiming], runs: int) -> list[str]:
    return (['Mandatory queries at {:,} rows, read-only LOGIN role over TCP with a password, '
             'median of {}'.format(rows, runs), ''] + table(
        ['query', 'rows', 'client ms', 'server ms'],
        [[t.label, '{:,}'.format(t.rows), '%.1f' % t.median_ms, '%.1f' % t.server_ms]
         for t in timings]) + ['', 'Plans (EXPLAIN, parent > child):'] + [
        '  %-30s %s' % (t.label, t.plan) for t in timings] + [
        '', 'client ms: execute and fetch every row; server ms: EXPLAIN ANALYZE execution '
        'time.'])


def site_lines(site: playbook.SiteTiming | None, skipped: str) -> list[str]:
    if site is None:
        return ['site.yml no-op re-run: not measured (%s)' % skipped]
    return [
        'site.yml on localhost (cluster %s), seconds, median of 3' % playbook.CLUSTER, '',
        'first run (converge)                 %7.2f' % site.converge_s,
        'no-op re-run                         %7.2f   changed=%d' % (
            site.noop_s, site.noop_changed),
        'empty playbook, no facts             %7.2f   ratio %.1fx' % (
            site.empty_s, site.noop_s / site.empty_s),
        'empty playbook, site play\'s facts    %7.2f   ratio %.1fx' % (
            site.empty_facts_s, site.noop_s / site.empty_facts_s),
        '',
        'A re-run runs %d tasks (%.2f s each on average); the slowest, from one more re-run'
        % (site.tasks, site.noop_s / max(site.tasks, 1)),
        'profiled with ansible.posix.profile_tasks:',
    ] + ['  %-84s %5.2fs' % (name[:84], seconds) for name, seconds in site.slowest]


def goal(name: str, measured: float | None, target: float, fmt: str) -> list[str]:
    if measured is None:
        return [name, '<= ' + fmt % target, 'n/a', 'not measured']
    met = measured <= target
    verdict = 'met' if met else 'missed by %.0f%%' % ((measured / target - 1) * 100)
    return [name, '<= ' + fmt % target, fmt % measured, verdict]


def goal_lines(results: list[LoadRow], site: playbook.SiteTiming | None) -> list[str]:
    largest = results[-1]
    at_100k = next((r for r in results if r.rows == EXECUTEMANY_UP_TO and r.executemany_s),
                   None)
    return ['Goals', ''] + table(['goal', 'target', 'measured', 'result'], [
        goal('module / \\copy at {:,} rows'.format(largest.rows),
             largest.module_s / largest.copy_s, GOAL_COPY_RATIO, '%.2fx'),
        goal('module / executemany at 100,000 rows',
             at_100k.module_s / at_100k.executemany_s if at_100k else None,
             GOAL_EXECUTEMANY_RATIO, '%.3fx'),
        goal('site.yml no-op / empty playbook (no facts)',
             site.noop_s / site.empty_s if site else None, GOAL_NOOP_RATIO, '%.1fx'),
    ])


# ---------------------------------------------------------------- the run

def run(args: argparse.Namespace) -> list[str]:
    sizes = sorted(int(size) for size in args.sizes.split(','))
    workdir = pathlib.Path(tempfile.mkdtemp(prefix='postgres_hr_bench_'))
    server = BenchServer()
    try:
        server.start()
        header = machine_lines(server)
        results = [measure_size(server, rows, args.repeats, workdir / ('%d.csv' % rows))
                   for rows in sizes]
        timings = measure_queries(server, sizes[-1], args.query_runs)
    finally:
        server.destroy()
        shutil.rmtree(workdir, ignore_errors=True)
    site, skipped = None, 'run with --skip-playbook'
    if not args.skip_playbook and os.geteuid() != 0:
        skipped = 'site.yml provisions this machine and needs root'
    elif not args.skip_playbook:
        progress('site.yml: converging cluster %s, then timing re-runs' % playbook.CLUSTER)
        site = playbook.time_site_noop()
    load = ', '.join('%.2f' % value for value in os.getloadavg())
    return (header + [''] + load_lines(results, args.repeats) + ['']
            + query_lines(sizes[-1], timings, args.query_runs) + ['']
            + site_lines(site, skipped) + [''] + goal_lines(results, site)
            + ['', 'load average  %s at the end' % load])


def main() -> None:
    args = parse_args()
    report = '\n'.join(run(args)) + '\n'
    sys.stdout.write(report)
    if args.output:
        args.output.write_text(report)
        progress('report written to %s' % args.output)


if __name__ == '__main__':
    main()
