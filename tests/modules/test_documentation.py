"""Every module's manual renders with ansible-doc, shared connection options included."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
MODULES = sorted(path.stem for path in (REPO / 'library').glob('*.py'))


@pytest.mark.parametrize('module', MODULES)
def test_ansible_doc_renders_the_module(module):
    ansible_doc = pathlib.Path(sys.executable).parent / 'ansible-doc'
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO / 'ansible.cfg'))
    result = subprocess.run([str(ansible_doc), '--json', module], cwd=REPO, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)[module]
    options = doc['doc']['options']
    # Every module that talks to PostgreSQL documents the shared connection options; the vault
    # action works on the controller's files only.
    if module != 'postgres_hr_vault_file':
        assert {'db', 'login_port', 'login_password', 'connect_retries'} <= set(options)
    else:
        assert {'path', 'generate', 'copy', 'remove'} <= set(options)
    assert doc['examples'].strip() and doc['return']
