"""Run one of the project's modules the way Ansible would, in a child process.

Usage: python module_runner.py MODULE_PATH  (module arguments as JSON on stdin)

Ansible ships `module_utils/` inside the module's payload as `ansible.module_utils.*`; here the
project's copy is registered under that name so the module runs unchanged, with its real
argument parsing, check mode and exit_json/fail_json output.
"""

from __future__ import annotations

import importlib.util
import json
import pathlib
import runpy
import sys

from ansible.module_utils.testing import patch_module_args

REPO = pathlib.Path(__file__).resolve().parent.parent


def register_project_module_utils() -> None:
    for path in (REPO / 'module_utils').glob('*.py'):
        name = 'ansible.module_utils.' + path.stem
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)


def main() -> None:
    module_path = sys.argv[1]
    args = json.loads(sys.stdin.read())
    register_project_module_utils()
    with patch_module_args(args):
        runpy.run_path(module_path, run_name='__main__')


if __name__ == '__main__':
    main()
