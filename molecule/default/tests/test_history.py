"""The migration history table records each applied migration with its checksum."""

from __future__ import annotations

import re
from typing import Callable

from conftest import HISTORY_TABLE, PsqlResult

SHA256_HEX = re.compile(r'^[0-9a-f]{64}$')


def test_history_table_has_the_documented_columns(
        superuser_sql: Callable[..., PsqlResult]) -> None:
    result = superuser_sql(f"""
        SELECT column_name
        FROM information_schema.columns
        WHERE table_name = '{HISTORY_TABLE}'
    """)
    columns = {row[0] for row in result.rows}
    assert {'version', 'name', 'checksum', 'applied_at', 'applied_by'} <= columns


def test_history_lists_versions_1_and_2_with_sha256_checksums(
        superuser_sql: Callable[..., PsqlResult]) -> None:
    result = superuser_sql(f"""
        SELECT version, checksum, applied_at IS NOT NULL, applied_by
        FROM {HISTORY_TABLE}
        ORDER BY version
    """)
    rows = result.rows
    versions = [int(row[0]) for row in rows]
    assert versions[:2] == [1, 2], f'expected versions 1 and 2 first, found {versions}'
    for version, checksum, applied, applied_by in rows:
        assert SHA256_HEX.match(checksum), f'version {version}: checksum {checksum!r}'
        assert applied == 't' and applied_by, f'version {version}: applied_at/applied_by unset'
    assert len({row[1] for row in rows}) == len(rows), 'two migrations share a checksum'
