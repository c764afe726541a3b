# -*- coding: utf-8 -*-
"""Documentation of the connection options every postgres_hr module takes.

The options themselves come from module_utils/postgres_hr_db.py (connection_argument_spec);
this fragment documents them once for ansible-doc.
"""

from __future__ import annotations


class ModuleDocFragment:

    DOCUMENTATION = r'''
options:
  db:
    description: Name of the database to connect to.
    type: str
    required: true
  login_host:
    description: Host name or address of the server; empty means O(login_unix_socket).
    type: str
    default: ''
  login_port:
    description: Port of the server.
    type: int
    default: 5432
  login_user:
    description: Role to log in as.
    type: str
    default: postgres
  login_password:
    description:
      - Password of O(login_user); empty for peer or trust authentication.
      - Never logged, never returned.
    type: str
    default: ''
  login_unix_socket:
    description: Directory of the server's Unix socket; empty means libpq's default.
    type: str
    default: ''
  connect_retries:
    description:
      - Connection attempts before giving up. Only failures to reach the server are retried;
        a refused password or a missing role or database fails at once.
      - The final error names host, port, database and the last error, never the password.
    type: int
    default: 5
  connect_retry_delay:
    description: Seconds between connection attempts.
    type: float
    default: 2.0
  connect_timeout:
    description: Seconds one connection attempt may take.
    type: int
    default: 5
requirements:
  - psycopg2 on the managed host (Debian package python3-psycopg2)
'''
