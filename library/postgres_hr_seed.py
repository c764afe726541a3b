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
  - Rows are generated lazily and streamed to the server with C(COPY), so the row count is not
    bounded by memory.
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
requirements:
  - psycopg2 on the managed host (Debian package python3-psycopg2)
options:
  login_host:
    description:
      - Host name or IP address of the server. Empty means the local socket.
    type: str
    default: ''
  login_port:
    description:
      - Port the server listens on.
    type: int
    default: 5432
  login_user:
    description:
      - Role to connect as. It must be able to write the table, or to become O(owner_role).
    type: str
    default: postgres
  login_password:
    description:
      - Password of O(login_user). Never logged or returned.
    type: str
    default: ''
  login_unix_socket:
    description:
      - Directory of the server's Unix socket, used when O(login_host) is empty.
    type: str
    default: ''
  db:
    description:
      - Database that holds the employees table.
    type: str
    required: true
  connect_retries:
    description:
      - Attempts to reach the server. Only failures to reach it are retried; authentication
        and configuration errors fail at once.
    type: int
    default: 5
  connect_retry_delay:
    description:
      - Seconds to wait between connection attempts.
    type: float
    default: 2.0
  connect_timeout:
    description:
      - Seconds one connection attempt may take.
    type: int
    default: 5
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
  - Department heads have no manager; everyone else reports to a curated employee.
  - The table is locked in SHARE ROW EXCLUSIVE mode while the module works, so readers go on
    but writers wait; two seeders of the same table run one after the other.
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
  sample: "Seeded 52 rows into public.employees. Scenarios: recent_hires 6/5, parental_leave 2/2."
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
  description: Rate of the streamed insert; 0.0 when nothing was inserted.
  returned: always
  type: float
  sample: 41250.3
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
import random
import re
import time
from collections import Counter
from decimal import Decimal
from typing import Any, Iterable, Iterator, NamedTuple

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
COPY_CHUNK = 64 * 1024

COPY_COLUMNS = ('first_name', 'last_name', 'department', 'role', 'employment_status',
                'hire_date', 'leave_type', 'salary_local', 'salary_usd', 'manager_name')
LEDGER_COLUMNS = ('seed_id', 'table_name', 'seeded_at', 'anchor_date', 'random_seed',
                  'row_count', 'first_employee_id', 'last_employee_id', 'shifted_days_total',
                  'reanchored_at')

# Days before the anchor a hire may fall, per kind of curated employee. All stay inside two
# years; "recent" stays 60 days inside a 6-month window so a month of drift cannot break it.
HIRE_WINDOWS = {
    'head': (540, 725),
    'lead': (365, 700),
    'staff': (130, 700),
    'recent': (10, 120),
    'synthetic': (1, 729),
}

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
    synthetic: bool  # synthetic employees may hold it (heads and managers are curated only)


ROLES = {
    'VP of Engineering': Role('Engineering', 220000, 270000, False),
    'Engineering Manager': Role('Engineering', 165000, 200000, False),
    'Principal Engineer': Role('Engineering', 190000, 230000, True),
    'Staff Engineer': Role('Engineering', 165000, 200000, True),
    'Senior Software Engineer': Role('Engineering', 130000, 165000, True),
    'Senior Site Reliability Engineer': Role('Engineering', 135000, 170000, True),
    'Software Engineer': Role('Engineering', 95000, 125000, True),
    'Junior Software Engineer': Role('Engineering', 75000, 95000, True),
    'DevOps Engineer': Role('Engineering', 105000, 140000, True),
    'Data Engineer': Role('Engineering', 110000, 145000, True),
    'QA Engineer': Role('Engineering', 80000, 105000, True),
    'Director of Marketing': Role('Marketing', 150000, 185000, False),
    'Marketing Manager': Role('Marketing', 100000, 130000, False),
    'Product Marketing Manager': Role('Marketing', 110000, 140000, True),
    'Content Strategist': Role('Marketing', 65000, 85000, True),
    'SEO Specialist': Role('Marketing', 60000, 80000, True),
    'Social Media Manager': Role('Marketing', 60000, 80000, True),
    'Graphic Designer': Role('Marketing', 60000, 82000, True),
    'Marketing Analyst': Role('Marketing', 65000, 88000, True),
    'Marketing Coordinator': Role('Marketing', 50000, 65000, True),
    'VP of Sales': Role('Sales', 170000, 210000, False),
    'Sales Manager': Role('Sales', 115000, 145000, False),
    'Solutions Consultant': Role('Sales', 100000, 130000, True),
    'Senior Account Executive': Role('Sales', 95000, 125000, True),
    'Account Executive': Role('Sales', 70000, 100000, True),
    'Sales Development Representative': Role('Sales', 50000, 65000, True),
    'Sales Operations Analyst': Role('Sales', 70000, 90000, True),
    'HR Director': Role('HR', 130000, 160000, False),
    'HR Business Partner': Role('HR', 85000, 110000, True),
    'Recruiter': Role('HR', 60000, 80000, True),
    'Payroll Specialist': Role('HR', 55000, 72000, True),
    'HR Coordinator': Role('HR', 48000, 60000, True),
    'Benefits Specialist': Role('HR', 58000, 75000, True),
    'Learning and Development Specialist': Role('HR', 62000, 80000, True),
    'Finance Director': Role('Finance', 170000, 210000, False),
    'Controller': Role('Finance', 130000, 160000, False),
    'Senior Financial Analyst': Role('Finance', 95000, 120000, True),
    'Financial Analyst': Role('Finance', 75000, 95000, True),
    'Accountant': Role('Finance', 65000, 85000, True),
    'Accounts Payable Specialist': Role('Finance', 50000, 65000, True),
}

DEPARTMENT_WEIGHTS = {'Engineering': 35, 'Sales': 25, 'Marketing': 15, 'Finance': 15, 'HR': 10}
STATUS_WEIGHTS = {'Active': 85, 'Terminated': 10, 'On Leave': 5}
LEAVE_TYPES = ('Parental Leave', 'Medical Leave', 'Sabbatical', 'Personal Leave')


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

# Synthetic employees report to whoever already manages people in their department.
SYNTHETIC_MANAGERS = {
    department: sorted({p.manager for p in CURATED
                        if p.manager and ROLES[p.role].department == department})
    for department in DEPARTMENT_WEIGHTS
}
SYNTHETIC_ROLES = {
    department: sorted(name for name, role in ROLES.items()
                       if role.department == department and role.synthetic)
    for department in DEPARTMENT_WEIGHTS
}

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


# ---------------------------------------------------------------- row generation

# Only Random.random() is used, with our own arithmetic on top: its output for a given seed
# has been stable across Python releases, so a seed gives the same rows on any target host.
def pick_index(rng: random.Random, count: int) -> int:
    return min(int(rng.random() * count), count - 1)


def pick_weighted(rng: random.Random, weights: dict[str, int]) -> str:
    point = rng.random() * sum(weights.values())
    for value, weight in weights.items():
        point -= weight
        if point < 0:
            return value
    # Float rounding can leave the point at exactly zero after the last weight.
    return list(weights)[-1]


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


def synthetic_name(rng: random.Random) -> tuple[str, str]:
    """A generated name that never equals a curated one, so manager names stay unambiguous."""
    while True:
        first = FIRST_NAMES[pick_index(rng, len(FIRST_NAMES))]
        last = LAST_NAMES[pick_index(rng, len(LAST_NAMES))]
        if '%s %s' % (first, last) not in CURATED_NAMES:
            return first, last


def synthetic_row(rng: random.Random, anchor: datetime.date) -> Employee:
    first, last = synthetic_name(rng)
    department = pick_weighted(rng, DEPARTMENT_WEIGHTS)
    roles = SYNTHETIC_ROLES[department]
    role = roles[pick_index(rng, len(roles))]
    country = pick_weighted(rng, {code: c.weight for code, c in COUNTRIES.items()})
    status = pick_weighted(rng, STATUS_WEIGHTS)
    leave = LEAVE_TYPES[pick_index(rng, len(LEAVE_TYPES))] if status == 'On Leave' else None
    managers = SYNTHETIC_MANAGERS[department]
    manager = managers[pick_index(rng, len(managers))]
    local, usd = salary(rng, role, country)
    return Employee(first, last, department, role, status, hire_date(rng, anchor, 'synthetic'),
                    leave, local, usd, manager)


def generate_rows(seed: int, total: int, anchor: datetime.date) -> Iterator[Employee]:
    """Yield the curated employees, then synthetic ones, one at a time.

    Curated and synthetic rows draw from separate generators, so adding synthetic rows never
    changes the curated ones.
    """
    curated_rng = random.Random('%d/curated' % seed)
    for person in CURATED:
        yield curated_row(person, curated_rng, anchor)
    synthetic_rng = random.Random('%d/synthetic' % seed)
    for _ in range(total - len(CURATED)):
        yield synthetic_row(synthetic_rng, anchor)


def tallied(rows: Iterable[Employee], by_department: Counter,
            by_status: Counter) -> Iterator[Employee]:
    for row in rows:
        by_department[row.department] += 1
        by_status[row.employment_status] += 1
        yield row


# ---------------------------------------------------------------- COPY stream

def copy_field(value: Any) -> str:
    """One value in COPY's text format."""
    if value is None:
        return '\\N'
    text = value.isoformat() if isinstance(value, datetime.date) else str(value)
    return (text.replace('\\', '\\\\').replace('\t', '\\t')
            .replace('\n', '\\n').replace('\r', '\\r'))


def copy_lines(rows: Iterable[tuple], first_id: int | None = None) -> Iterator[str]:
    """COPY text lines; with first_id, each line starts with a counted employee_id."""
    for number, row in enumerate(rows):
        fields = [copy_field(value) for value in row]
        if first_id is not None:
            fields.insert(0, str(first_id + number))
        yield '\t'.join(fields) + '\n'


class CopyStream:
    """File-like reader over lines, so COPY pulls rows as the server takes them."""

    def __init__(self, lines: Iterator[str]) -> None:
        self._lines = lines
        self._buffer = bytearray()

    def read(self, size: int = -1) -> bytes:
        want = COPY_CHUNK if size is None or size < 0 else size
        while len(self._buffer) < want:
            line = next(self._lines, None)
            if line is None:
                break
            self._buffer.extend(line.encode('utf-8'))
        chunk = bytes(self._buffer[:want])
        del self._buffer[:want]
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
                scenarios=[], ledger=None)
    base.update(values)
    return base


class Seeder:
    """One run of the module: one transaction against one employees table."""

    def __init__(self, conn: Any, params: dict[str, Any], check_mode: bool) -> None:
        self.conn = conn
        self.params = params
        self.check_mode = check_mode
        self.cur = conn.cursor()
        self.queries: list[str] = []
        self.warnings: list[str] = []
        schema = quote_ident(params['schema'], conn)
        self.alias = quote_ident(params['table'], conn)
        self.target = '%s.%s' % (schema, self.alias)
        self.ledger = '%s.%s' % (schema, quote_ident(LEDGER_TABLE, conn))
        self.label = '%s.%s' % (params['schema'], params['table'])
        self.ledger_before: dict[str, Any] | None = None

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

    def stream_rows(self, table: str, anchor: datetime.date,
                    first_id: int | None = None) -> tuple[Counter, Counter, float]:
        by_department, by_status = Counter(), Counter()
        rows = tallied(generate_rows(self.params['random_seed'], self.params['rows'], anchor),
                       by_department, by_status)
        columns = ('employee_id',) + COPY_COLUMNS if first_id is not None else COPY_COLUMNS
        sql = 'COPY %s (%s) FROM STDIN' % (table, ', '.join(columns))
        started = time.monotonic()
        self.cur.copy_expert(sql, CopyStream(copy_lines(rows, first_id)), size=COPY_CHUNK)
        self.queries.append(sql)
        return by_department, by_status, time.monotonic() - started

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
        by_department, by_status, seconds = self.stream_rows(self.target, anchor)
        first, last = self.inserted_id_range()
        entry = self.record_seed(anchor, first, last)
        scenarios = self.require_scenarios(
            self.target, 'Nothing was inserted: the seed was rolled back.')
        self.conn.commit()
        return self.seed_result('Seeded', anchor, by_department, by_status, seconds,
                                scenarios, entry)

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
        """The ids just inserted, checked to be exactly the rows of this seed."""
        count, first, last = self.fetch(
            'SELECT count(*), min(employee_id), max(employee_id) FROM %s' % self.target)
        if count != self.params['rows'] or last - first + 1 != count:
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
        by_department, by_status, seconds = self.stream_rows(preview, anchor, first_id=1)
        scenarios = self.require_scenarios(
            preview, 'The seed would be rolled back (check mode changed nothing).')
        self.conn.rollback()
        entry = dict(table_name=self.params['table'], anchor_date=anchor.isoformat(),
                     random_seed=self.params['random_seed'], row_count=self.params['rows'])
        return self.seed_result('Would seed', anchor, by_department, by_status, seconds,
                                scenarios, entry)

    def seed_result(self, verb: str, anchor: datetime.date, by_department: Counter,
                    by_status: Counter, seconds: float, scenarios: list[dict[str, Any]],
                    entry: dict[str, Any]) -> dict[str, Any]:
        inserted = sum(by_department.values())
        msg = '%s %d rows into %s, hire dates anchored on %s (%s).%s' % (
            verb, inserted, self.label, anchor.isoformat(),
            ', '.join('%s %d' % item for item in sorted(by_department.items())),
            scenario_summary(scenarios))
        return result(msg, changed=True, inserted=inserted, by_department=dict(by_department),
                      by_status=dict(by_status), scenarios=scenarios, ledger=entry,
                      rows_per_second=round(inserted / max(seconds, 1e-6), 1))

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
