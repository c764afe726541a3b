# -*- coding: utf-8 -*-
"""Change keys of an encrypted vault vars file on the controller, atomically and verified.

The rotation playbook stages, promotes and withdraws passwords through this action. The file is
decrypted and encrypted by the `ansible-vault` command of the running Ansible, with the vault
identities the playbook was started with, so the proof that the written file loads back is the
same command an operator would run. New passwords are generated here, so they never appear in a
task's arguments, and no value of the file is ever returned.
"""

from __future__ import annotations

import math
import os
import re
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile

import yaml

from ansible import context
from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.action import ActionBase

ARGUMENT_SPEC = {
    'path': {'type': 'path', 'required': True},
    'require': {'type': 'list', 'elements': 'str', 'default': []},
    'copy': {'type': 'dict', 'default': {}},
    'generate': {'type': 'list', 'elements': 'str', 'default': []},
    'password_length': {'type': 'int', 'default': 32},
    'password_alphabet': {
        'type': 'str',
        'default': 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'},
    'set': {'type': 'dict', 'default': {}},
    'remove': {'type': 'list', 'elements': 'str', 'default': []},
}
KEY = re.compile(r'^[A-Za-z_][A-Za-z0-9_]*$')
# A generated password must be at least this hard to guess, whatever length and alphabet.
MINIMUM_ENTROPY_BITS = 128
MINIMUM_LENGTH = 12
HEADER = '---\n# Vault vars of the postgres_hr project, rewritten by %s.\n'


class VaultCommandError(Exception):
    """ansible-vault failed; the message is its own, which never contains plaintext."""


class ActionModule(ActionBase):

    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        # Returned rather than raised, so that failed_when and registered results see it: the
        # rotation reads a failed promotion from the result and rolls back.
        try:
            return self._change_file(result)
        except AnsibleActionFail as error:
            result.update(failed=True, msg=str(error), written=False)
            return result

    def _change_file(self, result):
        validation = ArgumentSpecValidator(ARGUMENT_SPEC).validate(self._task.args)
        if validation.error_messages:
            raise AnsibleActionFail('; '.join(validation.error_messages))
        args = plain(validation.validated_parameters)
        check_arguments(args)

        vault = VaultCommand()
        path = args['path']
        if not os.path.isfile(path):
            raise AnsibleActionFail('vault file %s does not exist' % path)
        vault_id = vault_id_label(path)
        before = vault.load(path)

        missing = [key for key in args['require'] + list(args['copy'].values())
                   if key not in before]
        if missing:
            raise AnsibleActionFail('%s has no %s; nothing was changed'
                                    % (path, ', '.join(sorted(set(missing)))))

        after = dict(before)
        for target, source in args['copy'].items():
            after[target] = before[source]
        for key in args['generate']:
            after[key] = ''.join(secrets.choice(args['password_alphabet'])
                                 for _ in range(args['password_length']))
        after.update((key, str(value)) for key, value in args['set'].items())
        for key in args['remove']:
            after.pop(key, None)

        changed_keys = sorted(key for key in set(before) | set(after)
                              if before.get(key) != after.get(key))
        result.update(changed=bool(changed_keys), path=path, vault_id=vault_id,
                      changed_keys=changed_keys, written=False)
        if not changed_keys or self._task.check_mode:
            return result

        text = HEADER % self._task.name + yaml.safe_dump(
            after, default_flow_style=False, sort_keys=False, width=1000)
        try:
            replace_verified(vault, path, text, after, vault_id)
        except (OSError, VaultCommandError) as error:
            raise AnsibleActionFail('%s was not changed: %s' % (path, error))
        result['written'] = True
        result['msg'] = 'wrote %s (%s) and loaded it back with ansible-vault view' % (
            path, ', '.join(changed_keys))
        return result


def plain(value):
    """The value with Ansible's tagged string types turned into plain ones, which YAML dumps."""
    if isinstance(value, dict):
        return {plain(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if isinstance(value, str):
        return value.encode('utf-8').decode('utf-8')
    return value


def check_arguments(args):
    keys = (list(args['copy']) + list(args['copy'].values()) + args['generate']
            + list(args['set']) + args['remove'] + args['require'])
    bad = [key for key in keys if not KEY.match(key)]
    if bad:
        raise AnsibleActionFail('not a variable name: %s' % ', '.join(bad))
    if not args['generate']:
        return
    alphabet = args['password_alphabet']
    unusable = sorted(set(c for c in alphabet if not ('!' <= c <= '~')))
    if unusable:
        raise AnsibleActionFail(
            'password_alphabet may hold printable ASCII without blanks only (PostgreSQL '
            'refuses to hash other characters the same way on every client); found %r'
            % ''.join(unusable))
    distinct = len(set(alphabet))
    bits = args['password_length'] * math.log2(distinct) if distinct > 1 else 0
    if args['password_length'] < MINIMUM_LENGTH or bits < MINIMUM_ENTROPY_BITS:
        raise AnsibleActionFail(
            'a password of %d characters from %d distinct ones has %.0f bits of entropy; at '
            'least %d characters and %d bits are needed: raise password_length or widen '
            'password_alphabet' % (args['password_length'], distinct, bits, MINIMUM_LENGTH,
                                   MINIMUM_ENTROPY_BITS))


def vault_id_label(path):
    """The vault id the file was encrypted with (None for the default id)."""
    with open(path, encoding='utf-8') as handle:
        header = handle.readline().strip().split(';')
    if len(header) < 3 or header[0] != '$ANSIBLE_VAULT':
        raise AnsibleActionFail('%s is not an ansible-vault encrypted file' % path)
    return header[3] if len(header) > 3 and header[3] else None


def replace_verified(vault, path, text, expected, vault_id):
    """Encrypt into a temporary file beside path, prove it loads, then rename it over path.

    A reader sees the old file or the new one, never a partial one; a failure before the rename
    leaves the old file as it was.
    """
    directory = os.path.dirname(os.path.abspath(path))
    original = os.stat(path)
    handle, temporary = tempfile.mkstemp(dir=directory, prefix='.%s.' % os.path.basename(path))
    os.close(handle)
    try:
        os.chmod(temporary, 0o600)
        vault.encrypt(text, temporary, vault_id)
        os.chmod(temporary, 0o600)
        if os.geteuid() == 0:
            os.chown(temporary, original.st_uid, original.st_gid)
        with open(temporary, 'rb') as written:
            os.fsync(written.fileno())
        if vault.load(temporary) != expected:
            raise VaultCommandError('the encrypted copy did not decrypt to what was written')
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    directory_handle = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(directory_handle)
    finally:
        os.close(directory_handle)
    if stat.S_IMODE(os.stat(path).st_mode) != 0o600 or vault.load(path) != expected:
        raise VaultCommandError('the renamed file did not load back as written')


class VaultCommand:
    """The ansible-vault command beside the running ansible-playbook, with its vault ids."""

    def __init__(self):
        if context.CLIARGS.get('ask_vault_pass'):
            raise AnsibleActionFail(
                'this step writes the vault file with ansible-vault, which cannot reuse a '
                'password typed at the prompt: pass --vault-id or --vault-password-file '
                '(a file or a client script) instead of --ask-vault-pass')
        sibling = os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), 'ansible-vault')
        self.executable = sibling if os.access(sibling, os.X_OK) else shutil.which(
            'ansible-vault')
        if not self.executable:
            raise AnsibleActionFail('ansible-vault was not found beside ansible-playbook or '
                                    'on PATH')
        # Identities given on the command line; those of ansible.cfg and the environment
        # reach the child through the inherited environment.
        self.identities = []
        for vault_id in context.CLIARGS.get('vault_ids') or ():
            self.identities += ['--vault-id', vault_id]
        for password_file in context.CLIARGS.get('vault_password_files') or ():
            self.identities += ['--vault-password-file', password_file]

    def run(self, arguments, stdin=None):
        # Ansible's commands refuse a non-blocking stdin, which a worker's inherited one may be.
        process = subprocess.run([self.executable, *arguments, *self.identities],
                                 input=stdin if stdin is not None else '',
                                 capture_output=True, text=True)
        if process.returncode != 0:
            message = process.stderr.strip().splitlines()
            raise VaultCommandError('ansible-vault %s failed: %s' % (
                arguments[0], message[-1] if message else 'exit %d' % process.returncode))
        return process.stdout

    def load(self, path):
        try:
            data = yaml.safe_load(self.run(['view', path]))
        except VaultCommandError as error:
            raise AnsibleActionFail(str(error))
        if not isinstance(data, dict):
            raise AnsibleActionFail('%s does not decrypt to a mapping of variables' % path)
        return data

    def encrypt(self, text, output, vault_id):
        arguments = ['encrypt', '--output', output]
        if vault_id:
            arguments += ['--encrypt-vault-id', vault_id]
        self.run(arguments + ['-'], stdin=text)
