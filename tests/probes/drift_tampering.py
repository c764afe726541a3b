"""Tampering the drift tests apply as the superuser, and what the drift report must name for it.

Shared by tests/e2e and molecule's verify step, so both prove the same drift is detected and
repaired. The role changes are what the read-only role could do to itself inside
BEGIN READ WRITE; CREATE on public for PUBLIC is what a cluster upgraded from before 15 keeps.
"""

from __future__ import annotations


def tampering(role: str) -> tuple[str, ...]:
    """Statements that undo, one each, a control the role puts in place."""
    return (
        f"ALTER ROLE {role} SET statement_timeout = 0",
        f"ALTER ROLE {role} IN DATABASE hr_db SET default_transaction_read_only = off",
        f"ALTER ROLE {role} CONNECTION LIMIT -1",
        f"ALTER ROLE {role} PASSWORD 'tampered-password-0001'",
        f"GRANT pg_read_all_data TO {role}",
        "GRANT TEMPORARY ON DATABASE hr_db TO PUBLIC",
        "GRANT CREATE ON SCHEMA public TO PUBLIC",
        "GRANT EXECUTE ON FUNCTION pg_catalog.lo_create(oid) TO PUBLIC",
        "GRANT CONNECT ON DATABASE postgres TO PUBLIC",
    )


# What the drift report must name for the tampering above.
DRIFT_LABELS = (
    'client authentication rules', 'read-only role', 'memberships', 'settings', 'password',
    'CONNECT and TEMPORARY of PUBLIC on the HR database', 'on other databases',
    'CREATE on the schema', 'EXECUTE of PUBLIC')
