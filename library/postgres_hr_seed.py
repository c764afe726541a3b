#!/usr/bin/python
# -*- coding: utf-8 -*-
"""Seed the HR employees table with realistic, deterministic demo data."""

from __future__ import annotations

DOCUMENTATION = r'''
---
module: postgres_hr_seed
short_description: Seed an empty HR employees table with realistic, deterministic demo data
description:
  - Inserts a curated set of 52 employees, plus optional synthetic ones, into an empty
    employees table, in one transaction that holds a lock on the table.
  - The curated employees guarantee the app's demo scenarios by construction, with at least
    5 hires in the last 6 months (10 to 120 days before the seeding date), at least 3
    Engineering employees earning more than 120000 USD, at least 2 on Parental Leave and at
    least 4 reporting to John Doe, the VP of Engineering.
  - Synthetic employees follow fixed shares. Departments are Engineering 35%, Sales 25%,
    Marketing 15%, Finance 15% and HR 10%. Roles are weighted within each department, so
    juniors and mid-levels outnumber principals. Salaries fall in a band per role, scaled per
    country. Statuses are Active 85%, Terminated 10% and On Leave 5%, and a leave type goes with
    On Leave and nothing else. Hire dates fall on weekdays within two years, more of them
    recent, as in a growing company.
  - Synthetic managers are synthetic employees in layers (for example Engineering Manager,
    Senior Engineering Manager, Director of Engineering). Each layer reports to the one above
    it, and the top layer reports to the curated head of the department. Every C(manager_name)
    is an employee of the same department. The layers and spans of control grow with O(rows),
    so a department head keeps a handful of direct reports at any size.
  - Rows are generated as C(COPY) text on a second thread while the server loads the previous
    chunk. They are streamed, never held, so memory stays flat however many rows there are.
  - A seed of 10000 rows or more into an empty table is loaded like a bulk loader, still in
    one transaction. The table's secondary indexes are dropped and built again from their
    saved definitions (C(pg_get_indexdef)) after the rows are in, and the module checks that
    every definition came back byte for byte. The rows are loaded with C(COPY FREEZE) after a
    C(TRUNCATE) of the empty table, and the table is analyzed. A failure or a kill anywhere
    rolls all of it back, indexes included.
  - Left in place and kept up to date row by row are unique and constraint indexes (the primary
    key), clustered or replica-identity indexes, indexes in another tablespace or with
    per-column statistics targets, and indexes something else depends on. When the role does
    not own the table, all its indexes stay.
  - Every seed is recorded in a ledger table, C(postgres_hr_seed_ledger), in the same schema as
    the employees table. The ledger names the exact range of C(employee_id) values the module
    inserted. Rows outside that range are never changed.
  - Hire dates are relative to the seeding date (the anchor). When the anchor is older than
    O(reanchor_after_days), the module moves the hire dates of its own rows forward by the
    days elapsed and moves the anchor, so time-relative scenarios keep holding.
  - A table that already holds rows is never seeded. If no ledger entry covers it, its rows
    belong to someone else and the module leaves them alone.
  - Salaries are set in the employee's local currency (C(salary_local)) with C(salary_usd)
    converted at one fixed rate per currency; USD 1, CAD 1.36, GBP 0.79, EUR 0.92, INR 83,
    BRL 5 per US dollar.
version_added: "1.0.0"
author:
  - postgres_hr project
extends_documentation_fragment:
  - postgres_hr_connection
options:
  schema:
    description:
      - Schema of the employees table. The ledger table is created in this schema too.
      - Must match C(^[a-z_][a-z0-9_]{0,62}$).
    type: str
    default: public
  table:
    description:
      - Name of the employees table. It must exist, with the columns of the project's
        migration.
      - Must match C(^[a-z_][a-z0-9_]{0,62}$).
    type: str
    default: employees
  owner_role:
    description:
      - Role that owns the table. When set, all work runs after C(SET LOCAL ROLE), so the
        ledger table the module creates belongs to this role. The role needs C(CREATE) on
        O(schema) the first time.
      - Empty means the work runs as O(login_user).
      - Must match C(^[a-z_][a-z0-9_]{0,62}$) when set.
    type: str
    default: ''
  random_seed:
    description:
      - Seed of the generator. The same seed and seeding date give the same rows.
    type: int
    default: 42
  rows:
    description:
      - Total rows to insert. The first 52 are the curated employees; the rest are
        synthetic employees derived from O(random_seed).
      - Between 52 and 10000000.
    type: int
    default: 52
  scenarios:
    description:
      - Checks that must hold after seeding or re-anchoring. Each is counted inside the
        transaction as C(SELECT count(*) FROM table WHERE predicate); if any count is below
        its minimum, the transaction is rolled back and the task fails.
      - On runs that change nothing the counts are reported, and a shortfall is a warning.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description:
          - Name used in messages and results. Names must be unique.
        type: str
        required: true
      question:
        description:
          - The user's question the scenario stands for; shown in messages only.
        type: str
      predicate:
        description:
          - SQL boolean expression over the table's columns. It is trusted SQL from the
            playbook; it may not contain a semicolon.
        type: str
        required: true
      minimum:
        description:
          - Fewest rows that must match. Zero or more.
        type: int
        required: true
  reanchor_after_days:
    description:
      - Age in days the anchor may reach before the module's hire dates are moved forward.
      - Curated recent hires are at most 120 days old at the anchor, so values above 60 let
        them leave a 6-month window between runs; the module warns about that.
    type: int
    default: 30
attributes:
  check_mode:
    support: full
    details:
      - A seed is previewed into a temporary copy of the table, so scenario counts are real
        and the table and its sequence are untouched. A re-anchor runs and is rolled back.
  diff_mode:
    support: full
    details:
      - The diff shows the module's ledger entry for the table before and after the run.
notes:
  - Department heads have no manager; everyone else reports to an employee of their department.
  - The table is locked in SHARE ROW EXCLUSIVE mode while the module works, so readers go on
    but writers wait; two seeders of the same table run one after the other. A seed of 10000
    rows or more takes ACCESS EXCLUSIVE mode for its index rebuild, so readers wait too.
  - Rebuilt indexes get new object ids, so their C(pg_stat_user_indexes) counters start again.
  - Frozen rows break MVCC in one way. A transaction that took its snapshot before the seed
    committed, and had not yet read the table, sees the new rows, as after any C(COPY FREEZE).
    A TRUNCATE trigger or a foreign key pointing at the table turns the freeze off.
  - The same O(random_seed), O(rows) and seeding date give the same rows with the same version
    of this module. Versions before the bulk loader drew other synthetic rows from the same
    seed; the curated rows are unchanged, and rows already in a table are never regenerated.
'''

EXAMPLES = r'''
- name: Seed the HR demo data and check the app's scenarios
  postgres_hr_seed:
    db: hr
    owner_role: hr_owner
    random_seed: 42
    scenarios:
      - name: recent_hires
        predicate: hire_date >= CURRENT_DATE - INTERVAL '6 months'
        minimum: 5
      - name: well_paid_engineers
        predicate: department = 'Engineering' AND salary_usd > 120000
        minimum: 3
      - name: parental_leave
        predicate: leave_type = 'Parental Leave'
        minimum: 2
      - name: john_doe_reports
        predicate: manager_name = 'John Doe'
        minimum: 4

- name: Seed a larger data set over TCP, re-anchoring hire dates weekly
  postgres_hr_seed:
    login_host: db.example.internal
    login_user: hr_admin
    login_password: "{{ vault_hr_admin_password }}"
    db: hr
    rows: 100000
    reanchor_after_days: 7
'''

RETURN = r'''
changed:
  description: Whether rows were inserted or re-anchored (or would be, in check mode).
  returned: always
  type: bool
  sample: true
msg:
  description: What happened, with the scenario counts.
  returned: always
  type: str
  sample: "Seeded 52 rows into public.employees in 0.0 s (9500 rows/s), hire dates anchored on
    2025-03-01 (Engineering 16, ...). Scenarios: recent_hires 6/5, parental_leave 3/2."
inserted:
  description: Rows inserted (or that would be, in check mode).
  returned: always
  type: int
  sample: 52
by_department:
  description: Inserted rows per department; empty when nothing was inserted.
  returned: always
  type: dict
  sample: {"Engineering": 16, "Finance": 8, "HR": 8, "Marketing": 10, "Sales": 10}
by_status:
  description: Inserted rows per employment status; empty when nothing was inserted.
  returned: always
  type: dict
  sample: {"Active": 44, "On Leave": 4, "Terminated": 4}
reanchored:
  description: Whether the module's hire dates were moved forward.
  returned: always
  type: bool
  sample: false
shifted_days:
  description: Days the module's hire dates were moved forward; 0 when not re-anchored.
  returned: always
  type: int
  sample: 0
shifted_rows:
  description: Rows whose hire date was moved forward; 0 when not re-anchored.
  returned: always
  type: int
  sample: 0
rows_per_second:
  description:
    - Rows inserted per second of loading (COPY, index builds and ANALYZE together); 0.0 when
      nothing was inserted.
  returned: always
  type: float
  sample: 241250.3
load_seconds:
  description: Seconds spent loading (COPY, index builds and ANALYZE); 0.0 when nothing was
    inserted.
  returned: always
  type: float
  sample: 4.145
deferred_indexes:
  description: Indexes dropped before the COPY and built again after it; empty for small seeds.
  returned: always
  type: list
  elements: str
  sample: ["idx_department", "idx_employment_status", "idx_hire_date", "idx_manager_name"]
frozen:
  description: Whether the rows were loaded with COPY FREEZE.
  returned: always
  type: bool
  sample: true
scenarios:
  description: Each scenario with the rows that matched and whether the minimum was met.
  returned: always
  type: list
  elements: dict
  sample:
    - {"name": "recent_hires", "predicate": "hire_date >= CURRENT_DATE - INTERVAL '6 months'",
       "count": 6, "minimum": 5, "ok": true}
ledger:
  description:
    - The module's ledger entry for the table after the run; null when the table holds no
      seed of the module. In check mode of a first seed, the entry that would be written.
  returned: always
  type: dict
  sample:
    seed_id: 1
    table_name: employees
    seeded_at: "2025-03-01T10:15:02.123456+00:00"
    anchor_date: "2025-03-01"
    random_seed: 42
    row_count: 52
    first_employee_id: 1
    last_employee_id: 52
    shifted_days_total: 0
    reanchored_at: null
queries:
  description: Statements that wrote or locked, in order, for auditing; COPY data is left out.
  returned: always
  type: list
  elements: str
  sample: ["LOCK TABLE \"public\".\"employees\" IN SHARE ROW EXCLUSIVE MODE"]
'''

import datetime
import itertools
import queue
import random
import re
import threading
import time
from bisect import bisect_right
from collections import Counter
from decimal import Decimal
from typing import Any, Callable, Iterable, Iterator, NamedTuple

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible.module_utils.postgres_hr_db import (
    HAS_PSYCOPG2,
    PSYCOPG2_IMPORT_ERROR,
    ConnectError,
    connect,
    connection_argument_spec,
    describe_target,
    first_line,
    quote_ident,
    validate_connection_params,
)

try:
    import psycopg2
except ImportError:  # reported through HAS_PSYCOPG2
    pass

IDENTIFIER = re.compile(r'^[a-z_][a-z0-9_]{0,62}$')
LEDGER_TABLE = 'postgres_hr_seed_ledger'
PREVIEW_TABLE = 'postgres_hr_seed_preview'
MAX_ROWS = 10_000_000
BIGINT_RANGE = (-2 ** 63, 2 ** 63 - 1)
# Curated recent hires are at most 120 days old at the anchor; 6 months is at least 181 days.
SAFE_REANCHOR_DAYS = 60
# About 1 MiB of COPY text per chunk: large enough that the per-call cost of handing a chunk
# to libpq vanishes, small enough that a few queued chunks keep memory flat.
CHUNK_ROWS = 8192
QUEUE_DEPTH = 4
# Hire dates are drawn from a table this long: about 30 entries per date of a two-year window,
# so each date's share is within a few percent of its exact value.
HIRE_DATE_TABLE = 16384
# Below this many rows the indexes are kept up to date row by row: rebuilding them would cost
# more than it saves, and readers would wait on the stronger lock for nothing.
DEFER_INDEXES_FROM = 10_000
# Index builds after a large seed sort in memory with this much; the setting is local to the
# seed's transaction.
INDEX_BUILD_MEMORY = '256MB'

COPY_COLUMNS = ('first_name', 'last_name', 'department', 'role', 'employment_status',
                'hire_date', 'leave_type', 'salary_local', 'salary_usd', 'manager_name')
LEDGER_COLUMNS = ('seed_id', 'table_name', 'seeded_at', 'anchor_date', 'random_seed',
                  'row_count', 'first_employee_id', 'last_employee_id', 'shifted_days_total',
                  'reanchored_at')

# Days before the anchor a hire may fall, per kind of employee. All stay inside two years;
# "recent" stays 60 days inside a 6-month window so a month of drift cannot break it.
# Synthetic employees on leave or gone were "settled" first; synthetic managers have a tenure.
HIRE_WINDOWS = {
    'head': (540, 725),
    'lead': (365, 700),
    'staff': (130, 700),
    'recent': (10, 120),
    'synthetic': (1, 729),
    'settled': (60, 729),
    'manager': (180, 729),
}
# A company whose headcount grows about 25% a year hires more each month than the one before:
# going back one day, the chance of a hire on that day shrinks by this factor.
HIRING_DECAY_PER_DAY = 0.9994

# Local currency units per US dollar: one rate per currency, whatever the country.
USD_RATES = {
    'USD': Decimal('1'), 'CAD': Decimal('1.36'), 'GBP': Decimal('0.79'),
    'EUR': Decimal('0.92'), 'INR': Decimal('83'), 'BRL': Decimal('5'),
}


class Country(NamedTuple):
    currency: str
    pay_level: float  # pay relative to the US band for the same role
    weight: int       # share of synthetic employees


COUNTRIES = {
    'US': Country('USD', 1.00, 50), 'CA': Country('CAD', 0.85, 10),
    'GB': Country('GBP', 0.85, 10), 'DE': Country('EUR', 0.85, 8),
    'FR': Country('EUR', 0.80, 5), 'IN': Country('INR', 0.35, 12),
    'BR': Country('BRL', 0.40, 5),
}


class Role(NamedTuple):
    department: str
    low_usd: int   # yearly pay band in the US
    high_usd: int
    weight: int = 0  # share among its department's synthetic individual contributors


# Individual contributors carry a weight, so juniors and mid-levels outnumber principals.
# Heads and leads are curated only; the manager ladders below are for synthetic managers.
ROLES = {
    'VP of Engineering': Role('Engineering', 220000, 270000),
    'Engineering Manager': Role('Engineering', 165000, 200000),
    'Senior Engineering Manager': Role('Engineering', 180000, 215000),
    'Director of Engineering': Role('Engineering', 200000, 240000),
    'Senior Director of Engineering': Role('Engineering', 215000, 260000),
    'Principal Engineer': Role('Engineering', 190000, 230000, 2),
    'Staff Engineer': Role('Engineering', 165000, 200000, 5),
    'Senior Software Engineer': Role('Engineering', 130000, 165000, 22),
    'Senior Site Reliability Engineer': Role('Engineering', 135000, 170000, 6),
    'Software Engineer': Role('Engineering', 95000, 125000, 30),
    'Junior Software Engineer': Role('Engineering', 75000, 95000, 10),
    'DevOps Engineer': Role('Engineering', 105000, 140000, 7),
    'Data Engineer': Role('Engineering', 110000, 145000, 8),
    'QA Engineer': Role('Engineering', 80000, 105000, 10),
    'Director of Marketing': Role('Marketing', 150000, 185000),
    'Marketing Manager': Role('Marketing', 100000, 130000),
    'Senior Marketing Manager': Role('Marketing', 115000, 145000),
    'Associate Director of Marketing': Role('Marketing', 130000, 160000),
    'Senior Director of Marketing': Role('Marketing', 145000, 175000),
    'Product Marketing Manager': Role('Marketing', 110000, 140000, 12),
    'Content Strategist': Role('Marketing', 65000, 85000, 16),
    'SEO Specialist': Role('Marketing', 60000, 80000, 10),
    'Social Media Manager': Role('Marketing', 60000, 80000, 12),
    'Graphic Designer': Role('Marketing', 60000, 82000, 14),
    'Marketing Analyst': Role('Marketing', 65000, 88000, 16),
    'Marketing Coordinator': Role('Marketing', 50000, 65000, 20),
    'VP of Sales': Role('Sales', 170000, 210000),
    'Sales Manager': Role('Sales', 115000, 145000),
    'Senior Sales Manager': Role('Sales', 130000, 160000),
    'Regional Sales Director': Role('Sales', 145000, 180000),
    'Area Vice President of Sales': Role('Sales', 160000, 200000),
    'Solutions Consultant': Role('Sales', 100000, 130000, 10),
    'Senior Account Executive': Role('Sales', 95000, 125000, 18),
    'Account Executive': Role('Sales', 70000, 100000, 30),
    'Sales Development Representative': Role('Sales', 50000, 65000, 32),
    'Sales Operations Analyst': Role('Sales', 70000, 90000, 10),
    'HR Director': Role('HR', 130000, 160000),
    'HR Manager': Role('HR', 85000, 110000),
    'Senior HR Manager': Role('HR', 100000, 125000),
    'Associate Director of HR': Role('HR', 110000, 135000),
    'Senior Director of HR': Role('HR', 120000, 150000),
    'HR Business Partner': Role('HR', 85000, 110000, 15),
    'Recruiter': Role('HR', 60000, 80000, 35),
    'Payroll Specialist': Role('HR', 55000, 72000, 12),
    'HR Coordinator': Role('HR', 48000, 60000, 18),
    'Benefits Specialist': Role('HR', 58000, 75000, 10),
    'Learning and Development Specialist': Role('HR', 62000, 80000, 10),
    'Finance Director': Role('Finance', 170000, 210000),
    'Controller': Role('Finance', 130000, 160000),
    'Finance Manager': Role('Finance', 100000, 125000),
    'Senior Finance Manager': Role('Finance', 115000, 140000),
    'Associate Director of Finance': Role('Finance', 130000, 155000),
    'Senior Director of Finance': Role('Finance', 145000, 180000),
    'Senior Financial Analyst': Role('Finance', 95000, 120000, 15),
    'Financial Analyst': Role('Finance', 75000, 95000, 30),
    'Accountant': Role('Finance', 65000, 85000, 30),
    'Accounts Payable Specialist': Role('Finance', 50000, 65000, 25),
}

# Titles of synthetic managers from the first layer up; each layer reports to the next, and
# the top one to the curated head of the department.
MANAGER_LADDERS = {
    'Engineering': ('Engineering Manager', 'Senior Engineering Manager',
                    'Director of Engineering', 'Senior Director of Engineering'),
    'Marketing': ('Marketing Manager', 'Senior Marketing Manager',
                  'Associate Director of Marketing', 'Senior Director of Marketing'),
    'Sales': ('Sales Manager', 'Senior Sales Manager', 'Regional Sales Director',
              'Area Vice President of Sales'),
    'HR': ('HR Manager', 'Senior HR Manager', 'Associate Director of HR',
           'Senior Director of HR'),
    'Finance': ('Finance Manager', 'Senior Finance Manager', 'Associate Director of Finance',
                'Senior Director of Finance'),
}
# Fewest direct reports a synthetic manager has on average; wider at the top of large seeds.
MIN_SPAN = 8
# Each layer's newest managers take the new reports; older teams are full.
MANAGER_POOL = 8

DEPARTMENT_WEIGHTS = {'Engineering': 35, 'Sales': 25, 'Marketing': 15, 'Finance': 15, 'HR': 10}


class StatusDraw(NamedTuple):
    status: str
    leave: str | None
    weight: int  # per thousand synthetic employees


# Status and leave type are drawn together, so a leave type goes with On Leave and nothing else.
STATUS_DRAWS = (
    StatusDraw('Active', None, 850),
    StatusDraw('Terminated', None, 100),
    StatusDraw('On Leave', 'Parental Leave', 18),
    StatusDraw('On Leave', 'Medical Leave', 17),
    StatusDraw('On Leave', 'Personal Leave', 10),
    StatusDraw('On Leave', 'Sabbatical', 5),
)


class Curated(NamedTuple):
    name: str
    role: str
    country: str
    hired: str  # key of HIRE_WINDOWS
    manager: str | None = None
    leave: str | None = None  # set means On Leave
    terminated: bool = False


# The four demo scenarios hold by construction: the "recent" hires, the US engineers with bands
# above 120000 USD, the three Parental Leave entries (one above the minimum of two, so the
# scenario survives one of them returning to work) and John Doe's five reports.
CURATED = (
    Curated('John Doe', 'VP of Engineering', 'US', 'head'),
    Curated('Priya Raman', 'Engineering Manager', 'US', 'lead', 'John Doe'),
    Curated('Marcus Okafor', 'Engineering Manager', 'US', 'lead', 'John Doe'),
    Curated('Sofia Lindqvist', 'Staff Engineer', 'US', 'staff', 'John Doe'),
    Curated('Kenji Watanabe', 'Principal Engineer', 'US', 'lead', 'John Doe'),
    Curated('Grace Kim', 'Senior Site Reliability Engineer', 'US', 'staff', 'John Doe'),
    Curated('Alejandro Vargas', 'Senior Software Engineer', 'US', 'staff', 'Priya Raman'),
    Curated('Hannah Schmidt', 'Senior Software Engineer', 'DE', 'staff', 'Priya Raman'),
    Curated('Wei Zhang', 'Software Engineer', 'CA', 'recent', 'Priya Raman'),
    Curated('Emily Carter', 'QA Engineer', 'US', 'staff', 'Priya Raman'),
    Curated('Tomás Herrera', 'Junior Software Engineer', 'BR', 'staff', 'Priya Raman'),
    Curated('Fatima Al-Sayed', 'Software Engineer', 'GB', 'staff', 'Marcus Okafor',
            leave='Parental Leave'),
    Curated('Daniel Kowalski', 'DevOps Engineer', 'US', 'staff', 'Marcus Okafor'),
    Curated('Aisha Bello', 'Data Engineer', 'GB', 'staff', 'Marcus Okafor'),
    Curated('Rahul Mehta', 'Software Engineer', 'IN', 'recent', 'Marcus Okafor'),
    Curated('Lucas Moreau', 'Software Engineer', 'FR', 'staff', 'Marcus Okafor',
            terminated=True),
    Curated('Olivia Bennett', 'Director of Marketing', 'US', 'head'),
    Curated('Chloe Dubois', 'Marketing Manager', 'FR', 'lead', 'Olivia Bennett'),
    Curated('Mateo Rossi', 'Product Marketing Manager', 'US', 'staff', 'Olivia Bennett'),
    Curated('Nia Thompson', 'Content Strategist', 'US', 'recent', 'Chloe Dubois'),
    Curated('Arjun Patel', 'SEO Specialist', 'IN', 'staff', 'Chloe Dubois'),
    Curated('Isabella Costa', 'Marketing Coordinator', 'BR', 'staff', 'Chloe Dubois',
            leave='Parental Leave'),
    Curated("Liam O'Connor", 'Graphic Designer', 'GB', 'staff', 'Chloe Dubois'),
    Curated('Yuki Tanaka', 'Social Media Manager', 'US', 'staff', 'Chloe Dubois'),
    Curated('Samuel Mensah', 'Marketing Analyst', 'GB', 'staff', 'Olivia Bennett'),
    Curated('Zoe Papadopoulos', 'Marketing Coordinator', 'US', 'staff', 'Chloe Dubois',
            terminated=True),
    Curated('Michael Brennan', 'VP of Sales', 'US', 'head'),
    Curated('Jessica Alvarez', 'Sales Manager', 'US', 'lead', 'Michael Brennan'),
    Curated('Omar Haddad', 'Account Executive', 'CA', 'staff', 'Jessica Alvarez'),
    Curated('Ngozi Eze', 'Senior Account Executive', 'GB', 'staff', 'Jessica Alvarez'),
    Curated('Ryan Murphy', 'Account Executive', 'US', 'recent', 'Jessica Alvarez'),
    Curated('Mei Lin', 'Sales Development Representative', 'US', 'recent', 'Jessica Alvarez'),
    Curated('Diego Santos', 'Account Executive', 'BR', 'staff', 'Jessica Alvarez'),
    Curated('Anna Novak', 'Sales Operations Analyst', 'DE', 'staff', 'Michael Brennan'),
    Curated('Tyler Brooks', 'Sales Development Representative', 'US', 'staff',
            'Jessica Alvarez', terminated=True),
    Curated('Leila Karimi', 'Solutions Consultant', 'US', 'staff', 'Michael Brennan',
            leave='Medical Leave'),
    Curated('Patricia Nguyen', 'HR Director', 'US', 'head'),
    Curated('Carlos Mendoza', 'HR Business Partner', 'US', 'staff', 'Patricia Nguyen'),
    Curated('Amara Diallo', 'Recruiter', 'FR', 'staff', 'Patricia Nguyen'),
    Curated('Ben Goldberg', 'Payroll Specialist', 'US', 'staff', 'Patricia Nguyen'),
    Curated('Sarah Johansson', 'HR Coordinator', 'US', 'recent', 'Patricia Nguyen'),
    Curated('Kwame Asante', 'Learning and Development Specialist', 'GB', 'staff',
            'Patricia Nguyen'),
    Curated('Elena Petrova', 'Recruiter', 'DE', 'staff', 'Patricia Nguyen',
            leave='Sabbatical'),
    Curated('Jamal Washington', 'Benefits Specialist', 'US', 'staff', 'Patricia Nguyen'),
    Curated('Robert Chen', 'Finance Director', 'US', 'head'),
    Curated('Laura Fischer', 'Controller', 'DE', 'lead', 'Robert Chen'),
    Curated('David Levi', 'Senior Financial Analyst', 'US', 'staff', 'Robert Chen'),
    Curated('Maria Gonzalez', 'Financial Analyst', 'US', 'staff', 'Laura Fischer'),
    Curated('Hiroshi Sato', 'Accountant', 'US', 'staff', 'Laura Fischer',
            leave='Parental Leave'),
    Curated('Ananya Iyer', 'Financial Analyst', 'IN', 'staff', 'Robert Chen'),
    Curated('Thomas Wright', 'Accountant', 'GB', 'staff', 'Laura Fischer', terminated=True),
    Curated('Chinonso Obi', 'Accounts Payable Specialist', 'US', 'staff', 'Laura Fischer'),
)

CURATED_NAMES = frozenset(person.name for person in CURATED)

# Whom synthetic staff report to when their department is too small for synthetic managers:
# the curated people who already manage someone there.
CURATED_MANAGERS = {
    department: sorted({p.manager for p in CURATED
                        if p.manager and ROLES[p.role].department == department})
    for department in DEPARTMENT_WEIGHTS
}
DEPARTMENT_HEADS = {ROLES[p.role].department: p.name for p in CURATED if p.manager is None}

FIRST_NAMES = (
    'Adaeze', 'Ahmed', 'Akira', 'Alice', 'Amina', 'Andrés', 'Anika', 'Ben', 'Bianca', 'Camila',
    'Chen', 'Chiara', 'Daniela', 'Dev', 'Elif', 'Emeka', 'Ethan', 'Farah', 'Felipe', 'Freya',
    'Gabriel', 'Hana', 'Ibrahim', 'Ines', 'Isaac', 'Jae-won', 'Javier', 'Julia', 'Kai', 'Kavya',
    'Kofi', 'Lars', 'Laila', 'Leon', 'Lucía', 'Malik', 'Maya', 'Mohammed', 'Nadia', 'Noah',
    'Olu', 'Paulo', 'Quinn', 'Rania', 'Ravi', 'Rosa', 'Sade', 'Sanjay', 'Selin', 'Siobhan',
    'Soo-ah', 'Tariq', 'Thandiwe', 'Valentina', 'Victor', 'Wanjiru', 'Xavier', 'Yara', 'Yusuf',
    'Zainab',
)
LAST_NAMES = (
    'Abubakar', 'Andersen', 'Bakshi', 'Banerjee', 'Becker', 'Castillo', 'Chowdhury', 'Cruz',
    'Dimitrov', 'Edwards', 'Fernandes', 'Friedman', 'García', 'Hansen', 'Hassan', 'Hughes',
    'Ivanova', 'Jackson', 'Kapoor', 'Kaur', 'Khan', 'Kowalczyk', 'Lee', 'Lopez', 'Mahlangu',
    'Martins', 'Morales', 'Nakamura', 'Nilsson', 'Nowak', 'Nwosu', 'Ortiz', 'Park', 'Pereira',
    'Quinteros', 'Reyes', 'Richter', 'Robinson', 'Saito', 'Schneider', 'Silva', 'Singh',
    'Sokolov', 'Suzuki', 'Tan', 'Torres', 'Tran', 'Van der Berg', 'Walker', 'Wang', 'Weber',
    'Williams', 'Wójcik', 'Yamamoto', 'Yilmaz', 'Young', 'Zhou',
)


class Employee(NamedTuple):
    first_name: str
    last_name: str
    department: str
    role: str
    employment_status: str
    hire_date: datetime.date
    leave_type: str | None
    salary_local: Decimal
    salary_usd: Decimal
    manager_name: str | None


class SeedError(Exception):
    """A failure whose message is safe to show; details go into the task result."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.details = details


# ---------------------------------------------------------------- curated rows

# Only Random.random() is used, with our own arithmetic on top: its output for a given seed
# has been stable across Python releases, so a seed gives the same rows on any target host.
def pick_index(rng: random.Random, count: int) -> int:
    return min(int(rng.random() * count), count - 1)


def hire_date(rng: random.Random, anchor: datetime.date, window: str) -> datetime.date:
    newest, oldest = HIRE_WINDOWS[window]
    return anchor - datetime.timedelta(days=newest + pick_index(rng, oldest - newest + 1))


def salary(rng: random.Random, role: str, country: str) -> tuple[Decimal, Decimal]:
    """Pay in local currency, rounded to 100 units, and its exact USD conversion."""
    band = ROLES[role]
    place = COUNTRIES[country]
    usd = (band.low_usd + rng.random() * (band.high_usd - band.low_usd)) * place.pay_level
    rate = USD_RATES[place.currency]
    local = Decimal(round(usd * float(rate) / 100) * 100)
    return local.quantize(Decimal('0.01')), (local / rate).quantize(Decimal('0.01'))


def status_of(person: Curated) -> str:
    if person.terminated:
        return 'Terminated'
    return 'On Leave' if person.leave else 'Active'


def curated_row(person: Curated, rng: random.Random, anchor: datetime.date) -> Employee:
    first, last = person.name.split(' ', 1)
    local, usd = salary(rng, person.role, person.country)
    return Employee(first, last, ROLES[person.role].department, person.role, status_of(person),
                    hire_date(rng, anchor, person.hired), person.leave, local, usd,
                    person.manager)


def curated_rows(seed: int, anchor: datetime.date) -> list[Employee]:
    """The curated employees. Their generator is separate from the synthetic one, so the
    number of synthetic rows never changes them."""
    rng = random.Random('%d/curated' % seed)
    return [curated_row(person, rng, anchor) for person in CURATED]


def copy_field(value: Any) -> str:
    """One value in COPY's text format."""
    if value is None:
        return '\\N'
    text = value.isoformat() if isinstance(value, datetime.date) else str(value)
    return (text.replace('\\', '\\\\').replace('\t', '\\t')
            .replace('\n', '\\n').replace('\r', '\\r'))


def copy_line(row: tuple) -> str:
    return '\t'.join(copy_field(value) for value in row) + '\n'


# ---------------------------------------------------------------- synthetic rows
#
# Synthetic rows are written directly as COPY text. Every value a row can take is rendered
# once, into tables built per run; a row is then a few draws into those tables and one string
# format. That is about ten times cheaper than building and formatting Python values per row,
# which was the bottleneck of a large seed.

def cumulative(weights: Iterable[float]) -> list[float]:
    """Cumulative shares ending at exactly 1.0: bisect_right with a draw in [0, 1) then picks
    an index in proportion to its weight and never past the end."""
    totals = list(itertools.accumulate(weights))
    return [total / totals[-1] for total in totals]


def lookup_table(shares: list[float], size: int) -> list[int]:
    """Entry i is the index that a draw in [i/size, (i+1)/size) picks from cumulative shares:
    one multiplication and one list index per draw instead of a binary search."""
    return [bisect_right(shares, (i + 0.5) / size) for i in range(size)]


def hire_date_table(anchor: datetime.date, window: str) -> list[str]:
    """Weekday hire dates of a window as COPY text, as a lookup table of HIRE_DATE_TABLE
    entries: each date fills a share of it that grows towards the anchor."""
    newest, oldest = HIRE_WINDOWS[window]
    dates, weights = [], []
    weight = 1.0
    for days in range(newest, oldest + 1):
        day = anchor - datetime.timedelta(days=days)
        if day.weekday() < 5:
            dates.append(day.isoformat())
            weights.append(weight)
        weight *= HIRING_DECAY_PER_DAY
    return [dates[i] for i in lookup_table(cumulative(weights), HIRE_DATE_TABLE)]


class Pay(NamedTuple):
    """A role's band in one country, in hundreds of local currency units."""

    base: float
    width: float
    currency: str


def pay_in(role: str, country: Country) -> Pay:
    band = ROLES[role]
    scale = country.pay_level * float(USD_RATES[country.currency]) / 100
    return Pay(band.low_usd * scale, (band.high_usd - band.low_usd) * scale, country.currency)


def salary_text(hundreds: int, per_dollar: tuple[int, int]) -> str:
    """Local pay and its USD value as COPY text; USD is rounded half to even, as Decimal
    division would, but in integers."""
    numerator, denominator = per_dollar
    cents, rest = divmod(hundreds * 10000 * denominator, numerator)
    if 2 * rest > numerator or (2 * rest == numerator and cents % 2):
        cents += 1
    return '%d.00\t%d.%02d' % (hundreds * 100, cents // 100, cents % 100)


def management(size: int, ladder: tuple[str, ...]) -> tuple[int, int]:
    """Layers of synthetic managers and their span of control for `size` synthetic staff.

    A layer is added while it would hold at least one manager at the minimum span. When the
    ladder's titles run out, the span widens instead, until the top layer (which reports to
    the curated head) is a handful of people: span ** (layers + 1/2) >= size.
    """
    layers = 0
    while layers < len(ladder) and MIN_SPAN ** (layers + 1) <= size:
        layers += 1
    span = MIN_SPAN
    while layers and span ** (2 * layers + 1) < size * size:
        span += 1
    return layers, span


class Position(NamedTuple):
    role: str               # COPY text
    layer: int              # 0 for individual contributors, else the management layer
    pay: tuple[Pay, ...]    # per country, in the order of COUNTRIES


class Department(NamedTuple):
    name: str
    text: str               # the name as COPY text
    positions: list[Position]
    shares: list[float]     # cumulative, one per position
    layers: int


def plan_department(name: str, size: int) -> Department:
    """Who works in a department of `size` synthetic staff: roles by weight, and managers in
    layers where a share of 1/span of each layer manages the layer below."""
    layers, span = management(size, MANAGER_LADDERS[name])
    managed = 1.0 / span if layers else 0.0
    roles = [(role, r.weight) for role, r in ROLES.items()
             if r.department == name and r.weight]
    total = sum(weight for _, weight in roles)
    entries = [(role, 0, (1 - managed) * weight / total) for role, weight in roles]
    for layer in range(1, layers + 1):
        above = 1.0 / span ** (layer + 1) if layer < layers else 0.0
        entries.append((MANAGER_LADDERS[name][layer - 1], layer, 1.0 / span ** layer - above))
    positions = [Position(copy_field(role), layer,
                          tuple(pay_in(role, country) for country in COUNTRIES.values()))
                 for role, layer, _ in entries]
    return Department(name, copy_field(name), positions, cumulative(e[2] for e in entries),
                      layers)


class ManagerPool:
    """The newest few managers of one layer, who take that layer's new reports."""

    def __init__(self, names: list[str] | None = None) -> None:
        self.names = list(names or [])
        self.added = 0

    def add(self, name: str) -> None:
        if len(self.names) < MANAGER_POOL:
            self.names.append(name)
        else:
            self.names[self.added % MANAGER_POOL] = name
        self.added += 1


class Slot(NamedTuple):
    """One kind of synthetic row: department, position and status, drawn together."""

    number: int
    department: int
    status: int
    layer: int
    middle: str                 # department, role and status as COPY text
    leave: str                  # leave type as COPY text
    hire_dates: list[str]       # lookup table, see hire_date_table
    # Per country: band base and width, rendered salaries by hundreds, rate as a fraction.
    pay: tuple[tuple[float, float, dict[int, str], tuple[int, int]], ...]
    bosses: list[str]           # the pool this slot's employees report to (shared, mutable)
    adds_to: ManagerPool | None  # where this slot's employees join as managers


class SyntheticRows:
    """Deterministic synthetic employees as COPY text, generated in bounded memory.

    Managers are synthetic employees too: each one joins its layer's pool when its row is
    written, and only pool members are named as managers, so every manager_name is an employee
    of the same department. Each department starts with one Active manager per layer, top down,
    so every pool has someone before the first report is drawn.
    """

    def __init__(self, seed: int, count: int, anchor: datetime.date) -> None:
        self.rng = random.Random('%d/synthetic' % seed)
        self.count = count
        total = sum(DEPARTMENT_WEIGHTS.values())
        self.departments = [plan_department(name, count * weight // total)
                            for name, weight in DEPARTMENT_WEIGHTS.items()]
        hire_dates = {window: hire_date_table(anchor, window)
                      for window in ('synthetic', 'settled', 'manager')}
        # Salaries rendered once per currency and amount: a few thousand distinct amounts per
        # currency (about 70000 in rupees), however many rows there are.
        rendered: dict[str, dict[int, str]] = {currency: {} for currency in USD_RATES}
        self.slots: list[Slot] = []
        shares: list[float] = []
        for number, department in enumerate(self.departments):
            pools = department_pools(department)
            for position, share in zip(department.positions, spread(department.shares)):
                for status, draw in enumerate(STATUS_DRAWS):
                    self.slots.append(make_slot(len(self.slots), number, status, department,
                                                position, pools, hire_dates, rendered))
                    shares.append(DEPARTMENT_WEIGHTS[department.name] * share * draw.weight)
        self.shares = cumulative(shares)
        # The weights add up to 100, so a table of 100 entries gives the shares exactly.
        self.countries = lookup_table(
            cumulative(country.weight for country in COUNTRIES.values()), 100)
        names = [(first, last) for first in FIRST_NAMES for last in LAST_NAMES
                 if '%s %s' % (first, last) not in CURATED_NAMES]
        self.names = ['%s\t%s' % (copy_field(first), copy_field(last)) for first, last in names]
        self.full_names = [copy_field('%s %s' % name) for name in names]
        self.counts = [0] * len(self.slots)

    def founders(self) -> list[Slot]:
        """One Active manager per layer and department, top layer first."""
        chosen = [slot for slot in self.slots
                  if slot.layer and STATUS_DRAWS[slot.status].status == 'Active']
        return sorted(chosen, key=lambda slot: (slot.department, -slot.layer))

    def tallies(self) -> tuple[Counter, Counter]:
        by_department: Counter = Counter()
        by_status: Counter = Counter()
        for slot, count in zip(self.slots, self.counts):
            if count:
                by_department[self.departments[slot.department].name] += count
                by_status[STATUS_DRAWS[slot.status].status] += count
        return by_department, by_status

    def batches(self, size: int = CHUNK_ROWS) -> Iterator[list[str]]:
        """The rows as lists of at most `size` COPY lines, founding managers first."""
        render = self.renderer()
        founders = self.founders()[:self.count]
        if founders:
            yield [render(slot) for slot in founders]
        random_, slots, shares = self.rng.random, self.slots, self.shares
        remaining = self.count - len(founders)
        while remaining > 0:
            rows = min(size, remaining)
            remaining -= rows
            yield [render(slots[bisect_right(shares, random_())]) for _ in range(rows)]

    def renderer(self) -> Callable[[Slot], str]:
        """The function that draws the rest of a row of a slot and returns its COPY line.

        This is the whole cost of a large seed on the Python side, so it works on local names
        and plain tuples only: attribute look-ups per row would add half to its time.
        """
        random_ = self.rng.random
        countries, names, full_names = self.countries, self.names, self.full_names
        counts, name_count = self.counts, len(self.names)

        def render(slot: Slot) -> str:
            number, _, _, _, middle, leave, dates, pay, bosses, adds_to = slot
            person = int(random_() * name_count)
            hired = dates[int(random_() * HIRE_DATE_TABLE)]
            base, width, rendered, per_dollar = pay[countries[int(random_() * 100)]]
            hundreds = round(base + random_() * width)
            salaries = rendered.get(hundreds)
            if salaries is None:
                salaries = rendered[hundreds] = salary_text(hundreds, per_dollar)
            manager = bosses[int(random_() * len(bosses))]
            if adds_to is not None:
                adds_to.add(full_names[person])
            counts[number] += 1
            return '%s\t%s\t%s\t%s\t%s\t%s\n' % (
                names[person], middle, hired, leave, salaries, manager)
        return render


def spread(cumulative_shares: list[float]) -> list[float]:
    """The single shares behind a cumulative list."""
    return [share - before for share, before
            in zip(cumulative_shares, [0.0] + cumulative_shares[:-1])]


def department_pools(department: Department) -> list[ManagerPool]:
    """Pool i holds the managers of the department's employees in layer i."""
    if not department.layers:
        return [ManagerPool([copy_field(m) for m in CURATED_MANAGERS[department.name]])]
    return ([ManagerPool() for _ in range(department.layers)]
            + [ManagerPool([copy_field(DEPARTMENT_HEADS[department.name])])])


def make_slot(number: int, department_number: int, status: int, department: Department,
              position: Position, pools: list[ManagerPool],
              hire_dates: dict[str, list[str]],
              rendered: dict[str, dict[int, str]]) -> Slot:
    draw = STATUS_DRAWS[status]
    if position.layer:
        window = 'manager'
    else:
        window = 'synthetic' if draw.status == 'Active' else 'settled'
    # Managers who have left take no reports, so every report has a manager still there.
    joins = position.layer and draw.status != 'Terminated'
    return Slot(number, department_number, status, position.layer,
                '%s\t%s\t%s' % (department.text, position.role, copy_field(draw.status)),
                copy_field(draw.leave), hire_dates[window],
                tuple((p.base, p.width, rendered[p.currency],
                       USD_RATES[p.currency].as_integer_ratio()) for p in position.pay),
                pools[position.layer].names, pools[position.layer - 1] if joins else None)


# ---------------------------------------------------------------- COPY stream

def numbered(lines: list[str], first_id: int) -> list[str]:
    return ['%d\t%s' % (first_id + offset, line) for offset, line in enumerate(lines)]


class SeedRows:
    """All rows of one seed, as chunks of COPY text, with tallies once they are consumed."""

    def __init__(self, seed: int, total: int, anchor: datetime.date,
                 first_id: int | None = None) -> None:
        self.curated = curated_rows(seed, anchor)
        self.synthetic = SyntheticRows(seed, total - len(self.curated), anchor)
        self.first_id = first_id

    def chunks(self) -> Iterator[bytes]:
        next_id = self.first_id
        batches = itertools.chain([[copy_line(row) for row in self.curated]],
                                  self.synthetic.batches())
        for lines in batches:
            if next_id is not None:
                lines = numbered(lines, next_id)
                next_id += len(lines)
            yield ''.join(lines).encode('utf-8')

    def tallies(self) -> tuple[Counter, Counter]:
        by_department, by_status = self.synthetic.tallies()
        departments, statuses = Counter(by_department), Counter(by_status)
        for row in self.curated:
            departments[row.department] += 1
            statuses[row.employment_status] += 1
        return departments, statuses


class ChunkPump:
    """A file-like source for COPY whose chunks a thread generates ahead of the reader.

    While psycopg2 hands one chunk to the server (it releases the GIL to send), the thread
    renders the next, so generating rows overlaps the server's parsing and inserting. The
    bounded queue keeps memory flat. A failure on the thread is raised by read(), which
    aborts the COPY and so the transaction.
    """

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_DEPTH)
        self._stopping = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._fill, name='copy-rows', daemon=True)

    def __enter__(self) -> 'ChunkPump':
        self._thread.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._stopping.set()
        while self._thread.is_alive():
            self._drain()
            self._thread.join(timeout=0.05)

    def _drain(self) -> None:
        try:
            while True:
                self._queue.get_nowait()
        except queue.Empty:
            pass

    def _put(self, item: bytes | None) -> bool:
        while not self._stopping.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _fill(self) -> None:
        try:
            for chunk in self._chunks:
                if not self._put(chunk):
                    return
        except Exception as exc:  # any failure must reach the reader, or COPY would hang
            self._error = exc
        self._put(None)

    def read(self, size: int = -1) -> bytes:
        chunk = self._queue.get()
        if chunk is None:
            if self._error is not None:
                raise self._error
            return b''
        return chunk

    def readline(self, size: int = -1) -> bytes:
        return self.read(size)


# ---------------------------------------------------------------- arguments

def argument_spec() -> dict[str, dict[str, Any]]:
    spec = connection_argument_spec()
    spec.update(
        schema=dict(type='str', default='public'),
        table=dict(type='str', default='employees'),
        owner_role=dict(type='str', default=''),
        random_seed=dict(type='int', default=42),
        rows=dict(type='int', default=len(CURATED)),
        scenarios=dict(type='list', elements='dict', default=[], options=dict(
            name=dict(type='str', required=True),
            question=dict(type='str'),
            predicate=dict(type='str', required=True),
            minimum=dict(type='int', required=True),
        )),
        reanchor_after_days=dict(type='int', default=30),
    )
    return spec


def validate_identifiers(params: dict[str, Any]) -> list[str]:
    problems = []
    for key in ('schema', 'table', 'owner_role'):
        value = params[key]
        if (value or key != 'owner_role') and not IDENTIFIER.match(value):
            problems.append('%s must be a lowercase identifier matching %s, got "%s".'
                            % (key, IDENTIFIER.pattern, value))
    return problems


def validate_numbers(params: dict[str, Any]) -> list[str]:
    problems = []
    if not len(CURATED) <= params['rows'] <= MAX_ROWS:
        problems.append('rows must be between %d (the curated employees) and %d, got %d.'
                        % (len(CURATED), MAX_ROWS, params['rows']))
    if not BIGINT_RANGE[0] <= params['random_seed'] <= BIGINT_RANGE[1]:
        problems.append('random_seed must fit in a signed 64-bit integer.')
    if params['reanchor_after_days'] < 0:
        problems.append('reanchor_after_days must be 0 or more, got %d.'
                        % params['reanchor_after_days'])
    return problems


def validate_scenarios(scenarios: list[dict[str, Any]]) -> list[str]:
    problems = []
    seen = set()
    for number, scenario in enumerate(scenarios, start=1):
        name = scenario['name'].strip()
        label = 'scenario %d (%s)' % (number, name or 'unnamed')
        if not name:
            problems.append('%s needs a non-empty name.' % label)
        elif name in seen:
            problems.append('%s repeats a name; scenario names must be unique.' % label)
        seen.add(name)
        if not scenario['predicate'].strip():
            problems.append('%s needs a non-empty predicate.' % label)
        elif ';' in scenario['predicate']:
            problems.append('%s: the predicate must be one expression, without ";".' % label)
        if scenario['minimum'] < 0:
            problems.append('%s: minimum must be 0 or more, got %d.'
                            % (label, scenario['minimum']))
    return problems


def validate_params(params: dict[str, Any]) -> list[str]:
    """Everything wrong with the module's own options, as sentences."""
    return (validate_identifiers(params) + validate_numbers(params)
            + validate_scenarios(params['scenarios']))


# ---------------------------------------------------------------- database work

def jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, (datetime.date, datetime.datetime)) else value


def scenario_summary(scenarios: list[dict[str, Any]]) -> str:
    if not scenarios:
        return ''
    return ' Scenarios: %s.' % ', '.join(
        '%s %d/%d' % (s['name'], s['count'], s['minimum']) for s in scenarios)


def shortfall_message(scenarios: list[dict[str, Any]]) -> str:
    return '; '.join('scenario "%s" matched %d rows, needs at least %d'
                     % (s['name'], s['count'], s['minimum']) for s in scenarios if not s['ok'])


def result(msg: str, changed: bool = False, **values: Any) -> dict[str, Any]:
    """A result with every documented key, so callers can rely on them."""
    base = dict(changed=changed, msg=msg, inserted=0, by_department={}, by_status={},
                reanchored=False, shifted_days=0, shifted_rows=0, rows_per_second=0.0,
                load_seconds=0.0, deferred_indexes=[], frozen=False, scenarios=[], ledger=None)
    base.update(values)
    return base


class DeferredIndex(NamedTuple):
    name: str
    definition: str         # pg_get_indexdef, replayed as is
    comment: str | None


class Load(NamedTuple):
    by_department: Counter
    by_status: Counter
    seconds: float          # COPY, index builds and ANALYZE
    deferred: list[str]     # indexes built after the rows were in
    frozen: bool            # loaded with COPY FREEZE


DEFERRABLE_INDEXES_SQL = '''
SELECT i.relname, pg_get_indexdef(i.oid), obj_description(i.oid, 'pg_class')
FROM pg_index AS x
JOIN pg_class AS i ON i.oid = x.indexrelid
JOIN pg_class AS t ON t.oid = x.indrelid
WHERE x.indrelid = %s::regclass
  AND t.relkind = 'r'
  AND pg_has_role(t.relowner, 'USAGE')
  AND NOT x.indisunique AND NOT x.indisclustered AND NOT x.indisreplident
  AND x.indisvalid AND x.indisready
  AND i.reltablespace = 0
  AND NOT EXISTS (SELECT 1 FROM pg_constraint AS c WHERE c.conindid = i.oid)
  AND NOT EXISTS (SELECT 1 FROM pg_depend AS d
                  WHERE d.refclassid = 'pg_class'::regclass AND d.refobjid = i.oid)
  AND NOT EXISTS (SELECT 1 FROM pg_attribute AS a
                  WHERE a.attrelid = i.oid AND a.attstattarget >= 0)
ORDER BY i.relname'''

FREEZABLE_SQL = '''
SELECT has_table_privilege(%s::regclass, 'TRUNCATE')
  AND NOT EXISTS (SELECT 1 FROM pg_constraint
                  WHERE confrelid = %s::regclass AND contype = 'f')
  AND NOT EXISTS (SELECT 1 FROM pg_trigger
                  WHERE tgrelid = %s::regclass AND tgtype & 32 <> 0)'''

INDEX_DEFINITIONS_SQL = '''
SELECT i.relname, pg_get_indexdef(i.oid)
FROM pg_index AS x
JOIN pg_class AS i ON i.oid = x.indexrelid
WHERE x.indrelid = %s::regclass AND i.relname = ANY(%s)'''


class Seeder:
    """One run of the module: one transaction against one employees table."""

    def __init__(self, conn: Any, params: dict[str, Any], check_mode: bool) -> None:
        self.conn = conn
        self.params = params
        self.check_mode = check_mode
        self.cur = conn.cursor()
        self.queries: list[str] = []
        self.warnings: list[str] = []
        self.schema = quote_ident(params['schema'], conn)
        self.alias = quote_ident(params['table'], conn)
        self.target = '%s.%s' % (self.schema, self.alias)
        self.ledger = '%s.%s' % (self.schema, quote_ident(LEDGER_TABLE, conn))
        self.label = '%s.%s' % (params['schema'], params['table'])
        self.ledger_before: dict[str, Any] | None = None
        self.copied = 0

    # -- plumbing

    def write(self, sql: str, args: Any = None) -> None:
        """Run a statement that changes or locks something, and keep it for the audit."""
        self.cur.execute(sql, args)
        self.queries.append(self.cur.query.decode('utf-8'))

    def fetch(self, sql: str, args: Any = None) -> tuple | None:
        self.cur.execute(sql, args)
        return self.cur.fetchone()

    def relation_exists(self, qualified: str) -> bool:
        return self.fetch('SELECT to_regclass(%s) IS NOT NULL', (qualified,))[0]

    def today(self) -> datetime.date:
        # The server's date, because the scenarios compare against its CURRENT_DATE.
        return self.fetch('SELECT CURRENT_DATE')[0]

    def entry_from_row(self, row: tuple | None) -> dict[str, Any] | None:
        if row is None:
            return None
        return {column: jsonable(value) for column, value in zip(LEDGER_COLUMNS, row)}

    # -- the run

    def run(self) -> dict[str, Any]:
        self.begin()
        if self.fetch('SELECT NOT EXISTS (SELECT 1 FROM %s)' % self.target)[0]:
            return self.preview() if self.check_mode else self.seed()
        return self.keep_or_reanchor()

    def begin(self) -> None:
        self.conn.set_client_encoding('UTF8')
        if self.params['owner_role']:
            self.write('SET LOCAL ROLE %s' % quote_ident(self.params['owner_role'], self.conn))
        if not self.relation_exists(self.target):
            raise SeedError('Table %s does not exist in %s; run the migration that creates it '
                            'first.' % (self.label, describe_target(self.params)))
        if not self.check_mode:
            # Blocks other writers (and other seeders) until commit, so the emptiness check
            # stays true and the sequence hands this transaction one contiguous range of ids.
            self.write('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE' % self.target)

    def stream_rows(self, table: str, anchor: datetime.date, first_id: int | None = None,
                    freeze: bool = False) -> tuple[Counter, Counter]:
        rows = SeedRows(self.params['random_seed'], self.params['rows'], anchor, first_id)
        columns = ('employee_id',) + COPY_COLUMNS if first_id is not None else COPY_COLUMNS
        sql = 'COPY %s (%s) FROM STDIN%s' % (table, ', '.join(columns),
                                             ' WITH (FREEZE)' if freeze else '')
        with ChunkPump(rows.chunks()) as pump:
            self.cur.copy_expert(sql, pump)
        self.copied = self.cur.rowcount
        self.queries.append(sql)
        return rows.tallies()

    def count_scenarios(self, table: str) -> list[dict[str, Any]]:
        counted = []
        for scenario in self.params['scenarios']:
            # The predicate sits on its own lines so a trailing "--" comment cannot swallow
            # the closing parenthesis; the alias lets it name the table it was written for.
            sql = 'SELECT count(*) FROM %s AS %s WHERE (\n%s\n)' % (
                table, self.alias, scenario['predicate'])
            try:
                count = self.fetch(sql)[0]
            except psycopg2.Error as exc:
                raise SeedError('Scenario "%s" could not be counted on %s in %s: %s. Nothing '
                                'was changed.' % (scenario['name'], self.label,
                                                  describe_target(self.params), first_line(exc)))
            counted.append(dict(scenario, count=count, ok=count >= scenario['minimum']))
        return counted

    def require_scenarios(self, table: str, undone: str) -> list[dict[str, Any]]:
        counted = self.count_scenarios(table)
        if not all(s['ok'] for s in counted):
            raise SeedError('%s: %s. %s' % (self.label, shortfall_message(counted), undone),
                            scenarios=counted)
        return counted

    # -- seeding an empty table

    def seed(self) -> dict[str, Any]:
        anchor = self.today()
        self.ensure_ledger()
        self.write('UPDATE %s SET superseded_at = now() WHERE table_name = %%s '
                   'AND superseded_at IS NULL' % self.ledger, (self.params['table'],))
        load = self.load(anchor)
        first, last = self.inserted_id_range()
        entry = self.record_seed(anchor, first, last)
        scenarios = self.require_scenarios(
            self.target, 'Nothing was inserted: the seed was rolled back.')
        self.conn.commit()
        return self.seed_result('Seeded', anchor, load, scenarios, entry)

    def load(self, anchor: datetime.date) -> Load:
        """COPY the rows in; for a large seed, build the secondary indexes afterwards.

        Sorting a million keys once per index costs far less than inserting them one by one
        as rows arrive. The indexes are dropped and created again inside this transaction, so
        a failure or a kill anywhere restores them as they were.
        """
        started = time.monotonic()
        deferred = []
        if self.params['rows'] >= DEFER_INDEXES_FROM:
            deferred = self.deferrable_indexes()
        frozen = bool(deferred) and self.truncate_for_freeze()
        for index in deferred:
            self.write('DROP INDEX %s.%s' % (self.schema, quote_ident(index.name, self.conn)))
        by_department, by_status = self.stream_rows(self.target, anchor, freeze=frozen)
        if deferred:
            self.rebuild_indexes(deferred)
            # Fresh statistics, so the scenario counts below and the first queries after the
            # commit are planned for a million rows rather than for an empty table.
            self.write('ANALYZE %s' % self.target)
        return Load(by_department, by_status, time.monotonic() - started,
                    [index.name for index in deferred], frozen)

    def deferrable_indexes(self) -> list[DeferredIndex]:
        """Secondary indexes that can be dropped and recreated from their definition alone.

        Left in place: unique and constraint indexes (others may depend on them), clustered
        or replica-identity ones, those in another tablespace or with per-column statistics
        targets (their definition does not carry it), anything another object depends on,
        and every index when this role does not own the table.
        """
        self.cur.execute(DEFERRABLE_INDEXES_SQL, (self.target,))
        indexes = [DeferredIndex(*row) for row in self.cur.fetchall()]
        if indexes:
            # DROP INDEX would take this lock anyway; taking it first makes the wait visible.
            self.write('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE' % self.target)
        return indexes

    def truncate_for_freeze(self) -> bool:
        """Empty the (already empty) table again so COPY may load the rows frozen.

        COPY FREEZE needs a table created or truncated in the same transaction. Frozen rows
        are visible at once without hint-bit writes on first read, and autovacuum has no
        freezing left to do. Skipped when TRUNCATE would do more than nothing: a foreign key
        points at the table, or a TRUNCATE trigger would fire.
        """
        if not self.fetch(FREEZABLE_SQL, (self.target,) * 3)[0]:
            return False
        self.write('TRUNCATE ONLY %s' % self.target)
        return True

    def rebuild_indexes(self, indexes: list[DeferredIndex]) -> None:
        if self.fetch('SELECT pg_size_bytes(current_setting(%s)) < pg_size_bytes(%s)',
                      ('maintenance_work_mem', INDEX_BUILD_MEMORY))[0]:
            self.write('SET LOCAL maintenance_work_mem = %s', (INDEX_BUILD_MEMORY,))
        for index in indexes:
            self.write(index.definition)
            if index.comment is not None:
                self.write('COMMENT ON INDEX %s.%s IS %%s'
                           % (self.schema, quote_ident(index.name, self.conn)), (index.comment,))
        self.cur.execute(INDEX_DEFINITIONS_SQL, (self.target, [i.name for i in indexes]))
        rebuilt = dict(self.cur.fetchall())
        for index in indexes:
            if rebuilt.get(index.name) != index.definition:
                raise SeedError('%s: index %s came back as "%s", not as "%s". Nothing was '
                                'inserted: the seed was rolled back.'
                                % (self.label, index.name, rebuilt.get(index.name),
                                   index.definition))

    def ensure_ledger(self) -> None:
        if self.relation_exists(self.ledger):
            return
        self.write('''CREATE TABLE %s (
    seed_id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    table_name TEXT NOT NULL,
    seeded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    anchor_date DATE NOT NULL,
    random_seed BIGINT NOT NULL,
    row_count BIGINT NOT NULL,
    first_employee_id BIGINT NOT NULL,
    last_employee_id BIGINT NOT NULL,
    shifted_days_total INTEGER NOT NULL DEFAULT 0,
    reanchored_at TIMESTAMPTZ,
    superseded_at TIMESTAMPTZ,
    CHECK (last_employee_id - first_employee_id + 1 = row_count)
)''' % self.ledger)
        # One live seed per table: the module only seeds empty tables, so older entries
        # describe rows that are gone.
        self.write('CREATE UNIQUE INDEX %s ON %s (table_name) WHERE superseded_at IS NULL' % (
            quote_ident(LEDGER_TABLE + '_live', self.conn), self.ledger))
        self.write("COMMENT ON TABLE %s IS 'Seeds written by the postgres_hr_seed Ansible "
                   "module: the employee_id range of each, so it can re-anchor its own rows "
                   "and no others.'" % self.ledger)

    def inserted_id_range(self) -> tuple[int, int]:
        """The ids just inserted, checked to be exactly the rows of this seed.

        The table was empty and is locked against writers, so the rows COPY reports are all
        its rows; min and max come from the primary key without reading the table.
        """
        count = self.copied
        first, last = self.fetch(
            'SELECT min(employee_id), max(employee_id) FROM %s' % self.target)
        if count != self.params['rows'] or first is None or last - first + 1 != count:
            raise SeedError(
                '%s: expected %d rows with contiguous ids after the insert, found %d rows with '
                'ids %s to %s (another session used the id sequence). Nothing was inserted: '
                'run the task again.' % (self.label, self.params['rows'], count, first, last))
        return first, last

    def record_seed(self, anchor: datetime.date, first: int, last: int) -> dict[str, Any]:
        self.write('INSERT INTO %s (table_name, anchor_date, random_seed, row_count, '
                   'first_employee_id, last_employee_id) VALUES (%%s, %%s, %%s, %%s, %%s, %%s) '
                   'RETURNING %s' % (self.ledger, ', '.join(LEDGER_COLUMNS)),
                   (self.params['table'], anchor, self.params['random_seed'],
                    last - first + 1, first, last))
        return self.entry_from_row(self.cur.fetchone())

    def preview(self) -> dict[str, Any]:
        """Check mode: load the rows into a temporary copy, count, and roll back.

        The copy gets explicit ids so the table's sequence is not advanced: nextval is not
        undone by a rollback.
        """
        anchor = self.today()
        preview = 'pg_temp.%s' % quote_ident(PREVIEW_TABLE, self.conn)
        self.write('CREATE TEMPORARY TABLE %s (LIKE %s INCLUDING DEFAULTS) ON COMMIT DROP'
                   % (quote_ident(PREVIEW_TABLE, self.conn), self.target))
        started = time.monotonic()
        by_department, by_status = self.stream_rows(preview, anchor, first_id=1)
        load = Load(by_department, by_status, time.monotonic() - started, [], False)
        scenarios = self.require_scenarios(
            preview, 'The seed would be rolled back (check mode changed nothing).')
        self.conn.rollback()
        entry = dict(table_name=self.params['table'], anchor_date=anchor.isoformat(),
                     random_seed=self.params['random_seed'], row_count=self.params['rows'])
        return self.seed_result('Would seed', anchor, load, scenarios, entry)

    def seed_result(self, verb: str, anchor: datetime.date, load: Load,
                    scenarios: list[dict[str, Any]], entry: dict[str, Any]) -> dict[str, Any]:
        inserted = sum(load.by_department.values())
        rate = inserted / max(load.seconds, 1e-6)
        rebuilt = ''
        if load.deferred:
            rebuilt = '; %d indexes built after the load' % len(load.deferred)
        msg = '%s %d rows into %s in %.1f s (%d rows/s%s), hire dates anchored on %s (%s).%s' % (
            verb, inserted, self.label, load.seconds, rate, rebuilt, anchor.isoformat(),
            ', '.join('%s %d' % item for item in sorted(load.by_department.items())),
            scenario_summary(scenarios))
        return result(msg, changed=True, inserted=inserted,
                      by_department=dict(load.by_department), by_status=dict(load.by_status),
                      scenarios=scenarios, ledger=entry, rows_per_second=round(rate, 1),
                      load_seconds=round(load.seconds, 3), deferred_indexes=load.deferred,
                      frozen=load.frozen)

    # -- a table that already holds rows

    def live_entry(self) -> dict[str, Any] | None:
        if not self.relation_exists(self.ledger):
            return None
        return self.entry_from_row(self.fetch(
            'SELECT %s FROM %s WHERE table_name = %%s AND superseded_at IS NULL'
            % (', '.join(LEDGER_COLUMNS), self.ledger), (self.params['table'],)))

    def keep_or_reanchor(self) -> dict[str, Any]:
        entry = self.live_entry()
        self.ledger_before = entry
        if entry is None:
            return self.leave_foreign_rows()
        today = self.today()
        age = (today - datetime.date.fromisoformat(entry['anchor_date'])).days
        if age <= self.params['reanchor_after_days']:
            return self.keep_seed(entry, age)
        return self.reanchor(entry, today, age)

    def leave_foreign_rows(self) -> dict[str, Any]:
        count = self.fetch('SELECT count(*) FROM %s' % self.target)[0]
        scenarios = self.observe_scenarios()
        self.conn.rollback()
        return result('%s already holds %d rows the module did not insert (no seed ledger entry '
                      'for it); they are left alone and nothing was seeded.%s'
                      % (self.label, count, scenario_summary(scenarios)), scenarios=scenarios)

    def keep_seed(self, entry: dict[str, Any], age: int) -> dict[str, Any]:
        scenarios = self.observe_scenarios()
        self.conn.rollback()
        return result('%s already holds the module\'s seed of %s (ids %d to %d); its anchor is '
                      '%d days old, re-anchoring happens after %d.%s'
                      % (self.label, entry['seeded_at'][:10], entry['first_employee_id'],
                         entry['last_employee_id'], age, self.params['reanchor_after_days'],
                         scenario_summary(scenarios)), scenarios=scenarios, ledger=entry)

    def observe_scenarios(self) -> list[dict[str, Any]]:
        """On runs that change nothing, a shortfall is worth a warning, not a failure."""
        scenarios = self.count_scenarios(self.target)
        if not all(s['ok'] for s in scenarios):
            self.warnings.append('%s: %s; the module changed nothing.'
                                 % (self.label, shortfall_message(scenarios)))
        return scenarios

    def reanchor(self, entry: dict[str, Any], today: datetime.date,
                 days: int) -> dict[str, Any]:
        self.write('UPDATE %s SET hire_date = hire_date + %%s, updated_at = CURRENT_TIMESTAMP '
                   'WHERE employee_id BETWEEN %%s AND %%s' % self.target,
                   (days, entry['first_employee_id'], entry['last_employee_id']))
        shifted_rows = self.cur.rowcount
        self.write('UPDATE %s SET anchor_date = %%s, reanchored_at = now(), '
                   'shifted_days_total = shifted_days_total + %%s WHERE seed_id = %%s '
                   'RETURNING %s' % (self.ledger, ', '.join(LEDGER_COLUMNS)),
                   (today, days, entry['seed_id']))
        moved = self.entry_from_row(self.cur.fetchone())
        undone = ('The re-anchor would be rolled back (check mode changed nothing).'
                  if self.check_mode else 'Nothing was changed: the re-anchor was rolled back.')
        scenarios = self.require_scenarios(self.target, undone)
        if self.check_mode:
            self.conn.rollback()
        else:
            self.conn.commit()
        msg = '%s the hire dates of the module\'s %d rows in %s (ids %d to %d) forward by %d ' \
              'days, anchoring them on %s.%s' % (
                  'Would move' if self.check_mode else 'Moved', shifted_rows, self.label,
                  entry['first_employee_id'], entry['last_employee_id'], days,
                  today.isoformat(), scenario_summary(scenarios))
        return result(msg, changed=True, reanchored=True, shifted_days=days,
                      shifted_rows=shifted_rows, scenarios=scenarios, ledger=moved)


# ---------------------------------------------------------------- entry point

def ledger_diff(before: dict[str, Any] | None, after: dict[str, Any] | None) -> dict[str, Any]:
    keys = ('row_count', 'anchor_date', 'first_employee_id', 'last_employee_id')
    return dict(before={k: before.get(k) for k in keys} if before else {},
                after={k: after.get(k) for k in keys} if after else {})


def drift_warning(params: dict[str, Any]) -> str | None:
    if params['reanchor_after_days'] <= SAFE_REANCHOR_DAYS:
        return None
    return ('reanchor_after_days is %d: the newest curated hires (up to 120 days before the '
            'anchor) can leave a 6-month window before the next re-anchor; use %d or less.'
            % (params['reanchor_after_days'], SAFE_REANCHOR_DAYS))


def run_seeder(module: AnsibleModule, conn: Any) -> dict[str, Any]:
    seeder = Seeder(conn, module.params, module.check_mode)
    failure = 'Seeding %s in %s failed: %%s. Nothing was changed: the transaction was rolled ' \
              'back.' % (seeder.label, describe_target(module.params))
    try:
        outcome = seeder.run()
    except SeedError as exc:
        module.fail_json(msg=str(exc), queries=seeder.queries, **exc.details)
    except psycopg2.Error as exc:
        module.fail_json(msg=failure % first_line(exc), queries=seeder.queries)
    for warning in seeder.warnings:
        module.warn(warning)
    outcome['queries'] = seeder.queries
    if module._diff:
        outcome['diff'] = ledger_diff(seeder.ledger_before, outcome['ledger'])
    return outcome


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    problems = validate_connection_params(module.params) + validate_params(module.params)
    if problems:
        module.fail_json(msg=' '.join(problems))
    if not HAS_PSYCOPG2:
        module.fail_json(msg=missing_required_lib('psycopg2'), exception=PSYCOPG2_IMPORT_ERROR)
    warning = drift_warning(module.params)
    if warning:
        module.warn(warning)

    try:
        conn = connect(module.params)
    except ConnectError as exc:
        module.fail_json(msg=str(exc))
    # Closing without a commit discards whatever the failed or previewed transaction did.
    try:
        outcome = run_seeder(module, conn)
    finally:
        conn.close()
    module.exit_json(**outcome)


if __name__ == '__main__':
    main()
