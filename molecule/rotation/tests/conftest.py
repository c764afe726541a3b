"""Fixtures for the rotation verify step: the vault as the side effect left it, and the one of
before the rotation, which side_effect.yml copied to vault-before-rotation/.

The containers and the read-only psql come from the default scenario's conftest, loaded under
another module name, so both scenarios reach a platform and pass a password the same way: as
PGPASSWORD in the environment of `podman exec --env PGPASSWORD`, on no command line.

Vault files are read with the `ansible-vault view` an operator would run, the password given
as a file, and without the vault password client molecule configures: what decrypts a file
here is the password file under test, and nothing else.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

import pytest
import yaml

SCENARIO_DIR = pathlib.Path(__file__).resolve().parent.parent
PROJECT_DIR = pathlib.Path(os.environ.get('MOLECULE_PROJECT_DIRECTORY', SCENARIO_DIR.parents[1]))
PASSWORD_KEY = 'vault_postgres_hr_readonly_password'
VAULT_TIMEOUT_S = 60


def load_default_conftest() -> Any:
    name = 'default_scenario_conftest'
    spec = importlib.util.spec_from_file_location(
        name, SCENARIO_DIR.parent / 'default' / 'tests' / 'conftest.py')
    module = importlib.util.module_from_spec(spec)
    # Registered before it runs, as dataclasses look their module up by name.
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


_default = load_default_conftest()
# Fixtures and helpers shared with the default scenario (its platforms are read from this
# scenario's molecule.yml, through MOLECULE_FILE).
platform = _default.platform
Platform = _default.Platform
run_readonly_psql = _default.run_readonly_psql
READONLY_ROLE = _default.READONLY_ROLE
Secret = _default.Secret


@dataclass
class Vault:
    """A vault password file and the vars file it is meant to decrypt."""

    password_file: pathlib.Path
    vars_file: pathlib.Path
    # An empty ansible.cfg, which ansible-vault reads instead of molecule's.
    ansible_cfg: pathlib.Path

    def view(self, vars_file: pathlib.Path | None = None) -> subprocess.CompletedProcess:
        """`ansible-vault view` of vars_file (default: this vault's) with this password file."""
        # No ANSIBLE_VAULT_* variables: molecule's client script would otherwise decrypt
        # every file with the current password.
        env = {key: value for key, value in os.environ.items()
               if not key.startswith('ANSIBLE_VAULT')}
        env['ANSIBLE_CONFIG'] = str(self.ansible_cfg)
        command = [shutil.which('ansible-vault') or 'ansible-vault', 'view',
                   '--vault-password-file', str(self.password_file),
                   str(vars_file or self.vars_file)]
        return subprocess.run(command, capture_output=True, text=True, env=env,
                              timeout=VAULT_TIMEOUT_S, check=False)

    def variables(self) -> dict[str, Any]:
        out = self.view()
        if out.returncode != 0:
            # stderr of ansible-vault names the file and the error, never plaintext.
            pytest.fail(f'{self.vars_file} does not decrypt with {self.password_file}: '
                        f'{out.stderr.strip()}')
        return yaml.safe_load(out.stdout)


def ephemeral_dir() -> pathlib.Path:
    ephemeral = os.environ.get('MOLECULE_EPHEMERAL_DIRECTORY')
    if not ephemeral:
        pytest.fail('MOLECULE_EPHEMERAL_DIRECTORY is unset: run these tests with `molecule '
                    'verify -s rotation` after its side effect, which provides both vaults')
    return pathlib.Path(ephemeral)


@pytest.fixture(scope='session')
def empty_ansible_cfg(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    # Not /dev/null: ansible refuses a configuration file without the .cfg extension.
    path = tmp_path_factory.mktemp('ansible') / 'ansible.cfg'
    path.write_text('', encoding='utf-8')
    return path


@pytest.fixture(scope='session')
def current_vault(empty_ansible_cfg: pathlib.Path) -> Vault:
    """The run's vault now: rotated, then rekeyed, by the side effect."""
    vault_dir = ephemeral_dir() / 'vault'
    return Vault(vault_dir / 'password', vault_dir / 'vars.yml', empty_ansible_cfg)


@pytest.fixture(scope='session')
def previous_vault(empty_ansible_cfg: pathlib.Path) -> Vault:
    """The copies side_effect.yml took before rotating."""
    before = ephemeral_dir() / 'vault-before-rotation'
    if not before.is_dir():
        pytest.fail(f'{before} does not exist: the side effect (side_effect.yml) has not run')
    return Vault(before / 'password', before / 'vars.yml', empty_ansible_cfg)


@pytest.fixture(scope='session')
def current_variables(current_vault: Vault) -> dict[str, Any]:
    return current_vault.variables()


@pytest.fixture(scope='session')
def readonly_password(current_variables: dict[str, Any]) -> Secret:
    return Secret(current_variables[PASSWORD_KEY])


@pytest.fixture(scope='session')
def previous_password(previous_vault: Vault) -> Secret:
    return Secret(previous_vault.variables()[PASSWORD_KEY])
