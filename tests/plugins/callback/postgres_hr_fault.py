# -*- coding: utf-8 -*-
"""Test-only callback: causes a fault at a chosen point of a playbook run.

The rotation tests enable it (ANSIBLE_CALLBACK_PLUGINS, ANSIBLE_CALLBACKS_ENABLED) to break
something real between two tasks: stop a server, change a role, freeze a directory, or kill the
run. Callbacks run in ansible-playbook's main process while results are processed, so with the
linear strategy the fault lands before the next task starts on any host. It fires once.

Environment:
  POSTGRES_HR_FAULT_AFTER    part of the task name after whose success the fault happens
  POSTGRES_HR_FAULT_HOST     only after this host's result (optional)
  POSTGRES_HR_FAULT_COMMAND  a shell command to run, or `kill` to SIGKILL ansible-playbook
"""

from __future__ import annotations

import os
import signal
import subprocess

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = '''
name: postgres_hr_fault
type: aggregate
short_description: Cause a fault after a chosen task (tests only)
description: Runs a command, or kills the run, once a task whose name contains a string succeeds.
requirements:
  - enabled in ANSIBLE_CALLBACKS_ENABLED
'''


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'postgres_hr_fault'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.after = os.environ.get('POSTGRES_HR_FAULT_AFTER', '')
        self.host = os.environ.get('POSTGRES_HR_FAULT_HOST', '')
        self.command = os.environ.get('POSTGRES_HR_FAULT_COMMAND', '')
        self.fired = False

    def v2_runner_on_ok(self, result):
        if self.fired or not self.after or self.after not in result._task.get_name():
            return
        if self.host and result._host.get_name() != self.host:
            return
        self.fired = True
        if self.command == 'kill':
            os.kill(os.getpid(), signal.SIGKILL)
        subprocess.run(self.command, shell=True, check=True)
