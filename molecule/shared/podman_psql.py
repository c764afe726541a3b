"""psql inside a scenario's containers, shared by the verify steps of the molecule scenarios.

Each scenario's conftest imports this file by putting molecule/shared on sys.path: the
conftests themselves all share the module name `conftest`, so one cannot import another.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

# psql options shared by every call: no ~/.psqlrc, no command tags, unaligned tab-separated
# rows without headers, stop at the first error, and error messages that carry their SQLSTATE.
PSQL_OPTIONS = ['-X', '-q', '-A', '-t', '-F', '\t',
                '-v', 'ON_ERROR_STOP=1', '-v', 'VERBOSITY=verbose']


@dataclass
class PsqlResult:
    """Outcome of one psql call; `rows` splits unaligned, tuples-only output on tabs."""

    rc: int
    stdout: str
    stderr: str

    @property
    def rows(self) -> list[list[str]]:
        return [line.split('\t') for line in self.stdout.splitlines() if line]

    @property
    def sqlstate(self) -> str | None:
        """SQLSTATE of the first error, from psql's verbose error format."""
        match = re.search(r'(?:ERROR|FATAL):\s+([0-9A-Z]{5}):', self.stderr)
        return match.group(1) if match else None


def podman(*args: str, env: dict[str, str] | None = None,
           timeout: float = 120) -> subprocess.CompletedProcess:
    """`podman args...`, captured as text; the caller judges the return code."""
    return subprocess.run(['podman', *args], capture_output=True, text=True, timeout=timeout,
                          env=env, check=False)
