"""After a rotation and a vault rekey, only the new secrets work: the new read-only password
logs in on every host and still finds the scenarios' rows, the password of before is refused,
and the vault password of before opens nothing.

Secrets never reach an assertion's introspection: pytest would print both sides of a failed
comparison (and the output of a decryption that succeeded), so such checks compare into a
boolean first.
"""

from __future__ import annotations

import functools
import stat
from typing import Any

import pytest
import yaml

from conftest import (PASSWORD_KEY, PROJECT_DIR, READONLY_ROLE, Platform, Vault,
                      run_readonly_psql)


@functools.cache
def role_defaults() -> dict[str, Any]:
    """The role's defaults, which the converge and the side effect keep: the query scenarios it
    validates, and the length and alphabet of the passwords a rotation generates."""
    with (PROJECT_DIR / 'roles' / 'postgres_hr' / 'defaults' / 'main.yml').open(
            encoding='utf-8') as stream:
        return yaml.safe_load(stream)


def test_the_vault_holds_a_new_generated_password(readonly_password: str,
                                                  previous_password: str) -> None:
    length = len(readonly_password)
    assert length == role_defaults()['postgres_hr_rotation_password_length']
    from_alphabet = set(readonly_password) <= set(
        role_defaults()['postgres_hr_rotation_password_alphabet'])
    assert from_alphabet, 'the new password has characters outside the rotation alphabet'
    changed = readonly_password != previous_password
    assert changed, 'the vault still holds the password of before the rotation'


def test_the_vault_file_is_encrypted_private_and_holds_no_pending_state(
        current_vault: Vault, current_variables: dict[str, Any]) -> None:
    assert current_vault.vars_file.read_text(encoding='utf-8').startswith('$ANSIBLE_VAULT;')
    mode = stat.S_IMODE(current_vault.vars_file.stat().st_mode)
    assert mode == 0o600, f'{current_vault.vars_file} has mode {mode:o}'
    pending = sorted(key for key in current_variables if 'pending' in key)
    assert not pending, f'a finished rotation left {pending} in the vault'
    assert PASSWORD_KEY in current_variables


def test_the_old_vault_password_cannot_decrypt_the_vault(current_vault: Vault,
                                                         previous_vault: Vault) -> None:
    # The copies of before are a real vault: the old password opens the old file ...
    opens_its_own = previous_vault.view().returncode == 0
    assert opens_its_own, 'the pre-rotation password does not open the pre-rotation copy'
    replaced = (previous_vault.password_file.read_bytes().strip()
                != current_vault.password_file.read_bytes().strip())
    assert replaced, 'the rekey left the vault password as it was'
    # ... and not the current one, which refuses it as a wrong password and not otherwise.
    out = previous_vault.view(current_vault.vars_file)
    refused = out.returncode != 0
    assert refused, 'the vault password of before still decrypts the vault'
    assert 'Decryption failed' in out.stderr, out.stderr


def test_the_new_password_logs_in_over_tcp(platform: Platform, readonly_password: str) -> None:
    result = run_readonly_psql(platform.name, readonly_password, 'SELECT current_user')
    assert result.rc == 0, f'{platform.name}: {result.stderr}'
    assert result.rows == [[READONLY_ROLE]]


def test_the_password_of_before_is_refused(platform: Platform, previous_password: str) -> None:
    result = run_readonly_psql(platform.name, previous_password, 'SELECT 1')
    assert result.rc != 0, f'{platform.name} still accepts the password of before the rotation'
    assert 'password authentication failed' in result.stderr, result.stderr


@pytest.mark.parametrize('scenario', role_defaults()['postgres_hr_scenarios'],
                         ids=lambda scenario: scenario['name'])
def test_scenario_validates_as_the_readonly_role(platform: Platform, readonly_password: str,
                                                 scenario: dict[str, Any]) -> None:
    result = run_readonly_psql(platform.name, readonly_password,
                               f'SELECT count(*) FROM employees WHERE {scenario["predicate"]}')
    assert result.rc == 0, f'{platform.name}: {result.stderr}'
    count = int(result.stdout.strip())
    assert count >= scenario['minimum'], (
        f'{platform.name}: {scenario["name"]} matched {count} rows as {READONLY_ROLE}, '
        f'fewer than its minimum of {scenario["minimum"]}')
