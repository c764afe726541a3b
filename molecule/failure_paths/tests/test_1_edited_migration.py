"""An applied migration edited afterwards stops the next converge, names the file, and leaves
the schema exactly as it was.

The edit is made to a copy of the project's roles (ANSIBLE_ROLES_PATH points the converge at
it), so the project's own files are never touched, even when the test is cut short.
"""

from __future__ import annotations

import pathlib
import shutil
from typing import Callable

from conftest import HISTORY_TABLE, PROJECT_DIR, Platform, ansible_playbook

MIGRATION = '001_create_employees.sql.j2'
# A comment changes nothing in the database, but it does change the SQL's checksum.
EDIT = '-- A line added after this migration was applied.\n'

# Everything a migration could have touched, each query with a total order.
SCHEMA_QUERIES = {
    'columns': """
        SELECT table_name, column_name, data_type, character_maximum_length,
               numeric_precision, numeric_scale, is_nullable, column_default
        FROM information_schema.columns
        WHERE table_schema = 'public'
        ORDER BY table_name, ordinal_position""",
    'indexes': """
        SELECT tablename, indexname, indexdef
        FROM pg_indexes
        WHERE schemaname = 'public'
        ORDER BY tablename, indexname""",
    'constraints': """
        SELECT conrelid::regclass, conname, pg_get_constraintdef(oid)
        FROM pg_constraint
        WHERE connamespace = 'public'::regnamespace
        ORDER BY 1, 2""",
    'triggers': """
        SELECT tgrelid::regclass, tgname, pg_get_triggerdef(oid)
        FROM pg_trigger
        WHERE NOT tgisinternal
        ORDER BY 1, 2""",
    'history': f"""
        SELECT version, name, checksum, applied_at, applied_by, execution_ms
        FROM {HISTORY_TABLE}
        ORDER BY version""",
}


def schema_snapshot(superuser_sql: Callable[[str], list[list[str]]]) -> dict[str, list]:
    return {name: superuser_sql(sql) for name, sql in SCHEMA_QUERIES.items()}


def test_an_edited_applied_migration_fails_the_converge_and_changes_nothing(
        tmp_path: pathlib.Path, platform: Platform,
        superuser_sql: Callable[[str], list[list[str]]]) -> None:
    roles = tmp_path / 'roles'
    shutil.copytree(PROJECT_DIR / 'roles', roles)
    with (roles / 'postgres_hr' / 'templates' / 'migrations' / MIGRATION).open(
            'a', encoding='utf-8') as template:
        template.write(EDIT)
    before = schema_snapshot(superuser_sql)
    assert before['history'], f'{HISTORY_TABLE} is empty: the converge applied nothing'
    stored_checksum = before['history'][0][2]

    run = ansible_playbook(platform, roles_path=roles)
    after = schema_snapshot(superuser_sql)

    assert run.returncode != 0, run.summary()
    edited = [message for message in run.messages() if 'edited after it was applied' in message]
    assert edited, f'no message says a migration was edited:\n{run.summary()}'
    assert MIGRATION in edited[-1], f'the message does not name {MIGRATION}: {edited[-1]}'
    assert stored_checksum in edited[-1], 'the message does not give the recorded checksum'
    assert run.stats['changed'] == 0, run.summary()
    for name, rows in before.items():
        assert after[name] == rows, f'{name} changed although the converge failed'
