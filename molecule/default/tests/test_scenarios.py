"""The application's four questions, asked as the read-only role, find enough rows."""

from __future__ import annotations

from typing import Callable

import pytest

from conftest import PsqlResult

# name: (predicate over employees, minimum rows)
SCENARIOS = {
    'recent_hires': ("hire_date >= CURRENT_DATE - INTERVAL '6 months'", 5),
    'engineering_high_earners': ("department = 'Engineering' AND salary_usd > 120000", 3),
    'parental_leave': ("leave_type = 'Parental Leave'", 2),
    'managed_by_john_doe': ("manager_name = 'John Doe'", 4),
}


@pytest.mark.parametrize('scenario', list(SCENARIOS))
def test_scenario_has_enough_rows(readonly_sql: Callable[..., PsqlResult], scenario: str) -> None:
    predicate, minimum = SCENARIOS[scenario]
    result = readonly_sql(f'SELECT count(*) FROM employees WHERE {predicate}')
    assert result.rc == 0, result.stderr
    count = int(result.stdout.strip())
    assert count >= minimum, f'{scenario}: {count} rows, expected at least {minimum}'
