"""scripts/rekey-vault against throwaway inventories: the new password opens every vault file,
the old one opens none, and every refusal or interruption leaves a password on disk that works.

Each test builds its inventory in a temporary directory; the checks use the ansible-vault and
ansible-inventory commands of the virtualenv, as an operator would.
"""

from __future__ import annotations

import os
import pathlib
import secrets
import stat
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = REPO / 'scripts' / 'rekey-vault'
BIN = pathlib.Path(sys.executable).parent
ANSIBLE_VAULT = BIN / 'ansible-vault'

PLAIN_VARS = '---\npostgres_hr_listen_addresses: localhost\n'
HOSTS = ('all:\n  children:\n    web:\n      hosts:\n        db1:\n'
         '          ansible_connection: local\n')
# Two whole-file vaults: one without a vault-id label, one with the label `prod`.
VAULTS = {
    'group_vars/all/vault.yml': (None, '---\nvault_postgres_hr_readonly_password: "a-1"\n'),
    'group_vars/web/vault.yml': ('prod', '---\nvault_web_token: "b-2"\n'),
}


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without vault settings that would add secrets to each call."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith('ANSIBLE_VAULT')}
    env.update(ANSIBLE_CONFIG=str(REPO / 'ansible.cfg'), PATH=f'{BIN}:{env.get("PATH", "")}')
    env.update(extra)
    return env


def vault(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([str(ANSIBLE_VAULT), *args], input=stdin, env=clean_env(),
                          capture_output=True, text=True)


def decrypt(path: pathlib.Path, password_file: pathlib.Path) -> subprocess.CompletedProcess:
    return vault('view', '--vault-password-file', str(password_file), str(path))


def write_secret(path: pathlib.Path, password: str) -> pathlib.Path:
    path.write_text(password + '\n')
    path.chmod(0o600)
    return path


def encrypt(path: pathlib.Path, plaintext: str, password_file: pathlib.Path,
            label: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    vault_id = f'{label}@{password_file}' if label else str(password_file)
    result = vault('encrypt', '--vault-id', vault_id, '--output', str(path), '-', stdin=plaintext)
    assert result.returncode == 0, result.stderr


class Inventory:
    """An inventory with two vault files, plain vars and its vault password file."""

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root
        self.dir = root / 'inventory'
        self.old_password = secrets.token_urlsafe(24)
        # Outside the inventory, so that it stays the old password whatever the script does.
        self.old_pass_file = write_secret(root / 'old_password', self.old_password)
        self.dir.mkdir()
        self.pass_file = write_secret(self.dir / '.vault_pass', self.old_password)
        self.hosts = self.dir / 'hosts.yml'
        self.hosts.write_text(HOSTS)
        self.plain = self.dir / 'group_vars' / 'all' / 'main.yml'
        for relative, (label, plaintext) in VAULTS.items():
            encrypt(self.dir / relative, plaintext, self.old_pass_file, label)
        self.plain.write_text(PLAIN_VARS)

    def vault_files(self) -> list[pathlib.Path]:
        return [self.dir / relative for relative in VAULTS]

    def snapshot(self) -> dict[str, tuple[bytes, int]]:
        """Content and mode of every file under the temporary directory."""
        return {str(path.relative_to(self.root)): (path.read_bytes(), path.stat().st_mode)
                for path in sorted(self.root.rglob('*')) if path.is_file()}

    def rekey(self, ansible_vault: pathlib.Path = ANSIBLE_VAULT,
              *targets: pathlib.Path) -> subprocess.CompletedProcess:
        # A session of its own, so the crash test can kill the script's whole process group.
        return subprocess.run([str(SCRIPT), str(self.pass_file), *map(str, targets or (self.dir,))],
                              env=clean_env(ANSIBLE_VAULT=str(ansible_vault)),
                              capture_output=True, text=True, start_new_session=True)

    def inventory_list(self, password_file: pathlib.Path) -> subprocess.CompletedProcess:
        return subprocess.run([str(BIN / 'ansible-inventory'), '-i', str(self.hosts), '--list',
                               '--vault-password-file', str(password_file)],
                              env=clean_env(), capture_output=True, text=True)


@pytest.fixture
def inventory(tmp_path: pathlib.Path) -> Inventory:
    return Inventory(tmp_path)


def assert_rekeyed(inventory: Inventory) -> None:
    """Every vault file opens with the password file only, to its original plaintext."""
    for path, (label, plaintext) in zip(inventory.vault_files(), VAULTS.values()):
        opened = decrypt(path, inventory.pass_file)
        assert opened.returncode == 0, opened.stderr
        assert opened.stdout.rstrip('\n') == plaintext.rstrip('\n')
        refused = decrypt(path, inventory.old_pass_file)
        assert refused.returncode != 0 and 'Decryption failed' in refused.stderr, path
        header = path.read_text().splitlines()[0]
        assert header == (f'$ANSIBLE_VAULT;1.2;AES256;{label}' if label
                          else '$ANSIBLE_VAULT;1.1;AES256')
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert stat.S_IMODE(inventory.pass_file.stat().st_mode) == 0o600
    leftovers = [path.name for path in inventory.dir.rglob('.*')
                 if '.rekey.' in path.name or path.name.startswith('.vault_pass.')]
    assert leftovers == []


def assert_refused_without_change(inventory: Inventory, *args: pathlib.Path,
                                  says: tuple[str, ...]) -> None:
    """A rekey with these arguments exits 1, names every fragment of `says` on stderr and
    leaves every file of the inventory as it was."""
    before = inventory.snapshot()
    result = inventory.rekey(*args)
    assert result.returncode == 1, result.stdout + result.stderr
    for fragment in says:
        assert fragment in result.stderr
    assert inventory.snapshot() == before


def test_rekey_moves_every_vault_file_to_a_new_password(inventory):
    plain_before = (inventory.plain.read_bytes(), inventory.plain.stat().st_mode)
    hosts_before = inventory.hosts.read_bytes()

    result = inventory.rekey()

    assert result.returncode == 0, result.stderr
    new_password = inventory.pass_file.read_text().strip()
    assert new_password and new_password != inventory.old_password
    for path in inventory.vault_files():
        assert f'rekeyed: {path}' in result.stdout
    assert '(vault id prod)' in result.stdout
    assert result.stdout.splitlines()[-1].startswith(
        f'new vault password in place: {inventory.pass_file}')
    for secret in (inventory.old_password, new_password):
        assert secret not in result.stdout + result.stderr
    assert_rekeyed(inventory)
    assert (inventory.plain.read_bytes(), inventory.plain.stat().st_mode) == plain_before
    assert inventory.hosts.read_bytes() == hosts_before


def test_the_inventory_loads_with_the_new_password_only(inventory):
    assert inventory.rekey().returncode == 0

    loaded = inventory.inventory_list(inventory.pass_file)
    assert loaded.returncode == 0, loaded.stderr
    for name in ('vault_postgres_hr_readonly_password', 'vault_web_token',
                 'postgres_hr_listen_addresses'):
        assert name in loaded.stdout
    refused = inventory.inventory_list(inventory.old_pass_file)
    assert refused.returncode != 0
    assert 'Decryption failed' in refused.stderr


def test_no_password_reaches_the_arguments_of_a_process(inventory, tmp_path):
    # Every ansible-vault call records its arguments, which ps would show to any user.
    log = tmp_path / 'argv.log'
    recorder = tmp_path / 'ansible-vault-recorder'
    recorder.write_text(f'#!/usr/bin/env bash\nprintf "%s\\n" "$*" >> {log}\n'
                        f'exec {ANSIBLE_VAULT} "$@"\n')
    recorder.chmod(0o700)

    assert inventory.rekey(recorder).returncode == 0

    calls = log.read_text()
    assert calls.count('rekey ') == 2
    assert inventory.old_password not in calls
    assert inventory.pass_file.read_text().strip() not in calls


def test_an_interrupted_run_is_finished_by_running_again(inventory, tmp_path):
    # A real crash: this ansible-vault kills the script's whole process group with SIGKILL when
    # the second file's rekey starts, that is after the first file was renamed into place.
    marker = tmp_path / 'first-rekey-done'
    crasher = tmp_path / 'ansible-vault-crasher'
    crasher.write_text(f'#!/usr/bin/env bash\n'
                       f'if [ "$1" = rekey ]; then\n'
                       f'  if [ -e {marker} ]; then kill -KILL 0; fi\n'
                       f'  touch {marker}\n'
                       f'fi\n'
                       f'exec {ANSIBLE_VAULT} "$@"\n')
    crasher.chmod(0o700)
    first, second = inventory.vault_files()

    crashed = inventory.rekey(crasher)

    assert crashed.returncode == -9, crashed.stdout + crashed.stderr
    staged = inventory.dir / '.vault_pass.new'
    assert inventory.pass_file.read_text().strip() == inventory.old_password
    assert decrypt(first, staged).returncode == 0
    assert decrypt(second, inventory.pass_file).returncode == 0
    assert list(second.parent.glob('.vault.yml.rekey.*')), 'the crash left no half-done copy'
    new_password = staged.read_text().strip()

    rerun = inventory.rekey()

    assert rerun.returncode == 0, rerun.stderr
    assert 'resuming an interrupted rekey' in rerun.stdout
    assert f'already rekeyed: {first}' in rerun.stdout
    assert f'rekeyed: {second}' in rerun.stdout
    assert 'removed temporary file of the interrupted run' in rerun.stdout
    assert inventory.pass_file.read_text().strip() == new_password
    assert_rekeyed(inventory)
    assert inventory.inventory_list(inventory.pass_file).returncode == 0


def test_inline_vault_values_stop_the_run_before_any_change(inventory):
    secret = vault('encrypt_string', '--vault-password-file', str(inventory.old_pass_file),
                   '--stdin-name', 'vault_db_admin_password', stdin='s3cret')
    assert secret.returncode == 0, secret.stderr
    inline = inventory.dir / 'host_vars' / 'db1.yml'
    inline.parent.mkdir()
    inline.write_text('---\n' + secret.stdout)

    assert_refused_without_change(inventory, says=('inline !vault values', str(inline)))


def test_a_file_the_old_password_cannot_open_stops_the_run_before_any_change(inventory, tmp_path):
    other = write_secret(tmp_path / 'other_password', secrets.token_urlsafe(24))
    foreign = inventory.dir / 'group_vars' / 'db' / 'vault.yml'
    encrypt(foreign, '---\nvault_other: "c-3"\n', other)

    assert_refused_without_change(
        inventory, says=('decrypt with neither vault password', str(foreign)))


def test_an_executable_password_file_is_refused(inventory):
    inventory.pass_file.chmod(0o700)

    assert_refused_without_change(inventory, says=('is executable',))


def test_no_vault_file_found_is_an_error(inventory):
    assert_refused_without_change(inventory, ANSIBLE_VAULT,
                                  inventory.plain.parent / 'main.yml',
                                  says=('no ansible-vault encrypted file found',))


def test_the_molecule_vault_client_prints_the_new_password(tmp_path):
    # molecule/default/vault-password creates its vault on the first call and then prints the
    # plain password file, which the script rewrites.
    client = REPO / 'molecule' / 'default' / 'vault-password'
    env = clean_env(MOLECULE_EPHEMERAL_DIRECTORY=str(tmp_path),
                    MOLECULE_PROJECT_DIRECTORY=str(REPO))
    first = subprocess.run([str(client)], env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    password_file = tmp_path / 'vault' / 'password'

    result = subprocess.run([str(SCRIPT), str(password_file), str(tmp_path / 'vault')],
                            env=clean_env(ANSIBLE_VAULT=str(ANSIBLE_VAULT)),
                            capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
    printed = subprocess.run([str(client)], env=env, capture_output=True, text=True)
    assert printed.stdout.strip() == password_file.read_text().strip() != first.stdout.strip()
    opened = subprocess.run([str(ANSIBLE_VAULT), 'view', '--vault-password-file', str(client),
                             str(tmp_path / 'vault' / 'vars.yml')],
                            env=env, capture_output=True, text=True)
    assert opened.returncode == 0, opened.stderr
    assert 'vault_postgres_hr_readonly_password: ' in opened.stdout
