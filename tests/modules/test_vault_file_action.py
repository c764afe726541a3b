"""The postgres_hr_vault_file action, run by Ansible itself against real vault files.

Each test makes a vault file with ansible-vault, runs the action through `ansible localhost`,
and reads the file back with ansible-vault, as an operator would.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent
CURRENT = 'vault_postgres_hr_readonly_password'
PENDING = 'vault_postgres_hr_readonly_pending_password'


@pytest.fixture
def vault(tmp_path):
    """A vault file labelled `unit`, holding the current password and an unrelated key."""
    password_file = tmp_path / 'vault_pass'
    password_file.write_text('a vault password for this test only\n')
    path = tmp_path / 'vault.yml'
    subprocess.run([str(BIN / 'ansible-vault'), 'encrypt', '--vault-id',
                    'unit@%s' % password_file, '--output', str(path), '-'],
                   input='---\n%s: current-password-123\nother_secret: keep me\n' % CURRENT,
                   text=True, check=True, capture_output=True)
    return path, password_file


def run_action(vault, check=False, **args):
    path, password_file = vault
    # An inventory of its own: the project's (inventories/local) may hold a vault file
    # encrypted with another password.
    command = [str(BIN / 'ansible'), 'localhost', '-i', 'localhost,', '-c', 'local',
               '-m', 'postgres_hr_vault_file',
               '-a', json.dumps(dict(path=str(path), **args)),
               '--vault-id', 'unit@%s' % password_file]
    if check:
        command.append('--check')
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / 'ansible.cfg'),
               ANSIBLE_STDOUT_CALLBACK='json', ANSIBLE_LOAD_CALLBACK_PLUGINS='1',
               ANSIBLE_LOCALHOST_WARNING='0', ANSIBLE_INVENTORY_UNPARSED_WARNING='0')
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True)


def result_of(process):
    return json.loads(process.stdout)['plays'][0]['tasks'][0]['hosts']['localhost']


def view(vault):
    path, password_file = vault
    out = subprocess.run([str(BIN / 'ansible-vault'), 'view', '--vault-password-file',
                          str(password_file), str(path)],
                         check=True, capture_output=True, text=True).stdout
    return yaml.safe_load(out)


def test_generates_copies_and_removes_keeping_label_mode_and_other_keys(vault):
    staged = run_action(vault, generate=[PENDING], require=[CURRENT])
    assert staged.returncode == 0, staged.stdout + staged.stderr
    pending = view(vault)[PENDING]
    assert len(pending) == 32 and pending.isalnum()
    assert pending not in staged.stdout + staged.stderr
    assert result_of(staged)['changed_keys'] == [PENDING]

    promoted = run_action(vault, copy={CURRENT: PENDING}, remove=[PENDING],
                          set={'vault_postgres_hr_readonly_login': 'query_app_readonly_b'})
    assert promoted.returncode == 0, promoted.stdout + promoted.stderr
    assert view(vault) == {CURRENT: pending, 'other_secret': 'keep me',
                           'vault_postgres_hr_readonly_login': 'query_app_readonly_b'}
    path = vault[0]
    assert path.read_text().startswith('$ANSIBLE_VAULT;1.2;AES256;unit\n')
    assert path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ['vault.yml', 'vault_pass']


def test_check_mode_reports_and_writes_nothing(vault):
    before = vault[0].read_bytes()
    checked = run_action(vault, check=True, generate=[PENDING])
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert result_of(checked)['changed'] and not result_of(checked)['written']
    assert vault[0].read_bytes() == before


@pytest.mark.parametrize('args, message', [
    ({'generate': [PENDING], 'password_length': 16}, 'bits of entropy'),
    ({'generate': [PENDING], 'password_alphabet': 'ab'}, 'bits of entropy'),
    ({'generate': [PENDING], 'password_alphabet': 'abc def'}, 'printable ASCII without blanks'),
    ({'require': ['vault_postgres_hr_missing']}, 'has no vault_postgres_hr_missing'),
    ({'copy': {CURRENT: 'vault_postgres_hr_missing'}}, 'has no vault_postgres_hr_missing'),
    ({'remove': ['not a name']}, 'not a variable name'),
])
def test_bad_input_fails_with_a_clear_message_and_changes_nothing(vault, args, message):
    before = vault[0].read_bytes()
    failed = run_action(vault, **args)
    assert failed.returncode != 0
    assert message in result_of(failed)['msg']
    assert vault[0].read_bytes() == before


def test_a_wrong_vault_password_changes_nothing(vault, tmp_path):
    before = vault[0].read_bytes()
    wrong = tmp_path / 'wrong_pass'
    wrong.write_text('not the vault password\n')
    failed = run_action((vault[0], wrong), generate=[PENDING])
    assert failed.returncode != 0
    assert 'ansible-vault view failed' in result_of(failed)['msg']
    assert vault[0].read_bytes() == before


def test_an_unencrypted_file_is_refused(tmp_path, vault):
    plain = tmp_path / 'plain.yml'
    shutil.copy(REPO / 'roles' / 'postgres_hr' / 'defaults' / 'main.yml', plain)
    failed = run_action((plain, vault[1]), generate=[PENDING])
    assert failed.returncode != 0
    assert 'is not an ansible-vault encrypted file' in result_of(failed)['msg']
