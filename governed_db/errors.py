"""The exception tree of governed_db.

Every error governed_db raises is a psycopg error, so an existing
``except psycopg.Error`` keeps working::

    psycopg.Error
    ├── psycopg.errors.InsufficientPrivilege    (SQLSTATE 42501)
    │   └── PolicyViolation          a guardrail refused the statement
    │       ├── ApprovalRequired     the statement needs an approval first
    │       └── BlastRadiusExceeded  it touched more rows than allowed; rolled back
    └── psycopg.InterfaceError
        └── GovernanceError          governance could not do its job
            ├── UnreadableQueryError the query cannot be read exactly (also a TypeError)
            ├── PolicyError          a policy file or object is invalid
            └── AuditError           an audit record could not be made durable

psycopg's own errors (syntax errors, unique violations, ...) pass through
unchanged: governed_db never rewraps them.
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import errors as pg_errors

__all__ = [
    "ApprovalRequired",
    "AuditError",
    "BlastRadiusExceeded",
    "GovernanceError",
    "PolicyError",
    "PolicyViolation",
    "UnreadableQueryError",
]

_STATEMENT_PREVIEW = 200


def _preview(statement: str) -> str:
    text = " ".join(statement.split())
    if len(text) > _STATEMENT_PREVIEW:
        return text[: _STATEMENT_PREVIEW - 1] + "…"
    return text


class PolicyViolation(pg_errors.InsufficientPrivilege):
    """A guardrail refused a statement before it reached the server.

    ``rule_id`` names the rule, ``reason`` says what is wrong and ``hint`` what
    to do instead; ``statement`` is the (truncated) text and ``facts`` what the
    analyzer saw. The message joins them so a person or an LLM can act on it.
    """

    __module__ = "governed_db"

    def __init__(
        self,
        reason: str,
        *,
        rule_id: str,
        hint: str = "",
        statement: str = "",
        facts: Any = None,
    ) -> None:
        self.rule_id = rule_id
        self.reason = reason
        self.hint = hint
        self.statement = _preview(statement)
        self.facts = facts
        message = f"{reason} (rule {rule_id})."
        if hint:
            message += f" {hint}"
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_violation,
            (type(self), self.reason, self.rule_id, self.hint, self.statement),
        )


def _rebuild_violation(
    cls: type[PolicyViolation], reason: str, rule_id: str, hint: str, statement: str
) -> PolicyViolation:
    return cls(reason, rule_id=rule_id, hint=hint, statement=statement)


class ApprovalRequired(PolicyViolation):
    """The statement may run only once an approver has granted it.

    ``approval_id`` names the pending request (None when the policy lists no
    approvers) and ``approve_command`` is the exact CLI line an approver runs.
    """

    __module__ = "governed_db"

    def __init__(
        self,
        reason: str,
        *,
        rule_id: str,
        hint: str = "",
        statement: str = "",
        facts: Any = None,
        approval_id: str | None = None,
        approve_command: str | None = None,
    ) -> None:
        super().__init__(reason, rule_id=rule_id, hint=hint, statement=statement, facts=facts)
        self.approval_id = approval_id
        self.approve_command = approve_command

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild_approval,
            (
                self.reason,
                self.rule_id,
                self.hint,
                self.statement,
                self.approval_id,
                self.approve_command,
            ),
        )


def _rebuild_approval(
    reason: str,
    rule_id: str,
    hint: str,
    statement: str,
    approval_id: str | None,
    approve_command: str | None,
) -> ApprovalRequired:
    return ApprovalRequired(
        reason,
        rule_id=rule_id,
        hint=hint,
        statement=statement,
        approval_id=approval_id,
        approve_command=approve_command,
    )


class BlastRadiusExceeded(PolicyViolation):
    """The statement affected more rows than the limit; it was rolled back."""

    __module__ = "governed_db"


class GovernanceError(psycopg.InterfaceError):
    """Governance itself failed; the statement was not run (fail closed).

    When the refusal concerns one statement, ``rule_id`` names why (for
    example ``ungoverned-send`` or ``session-state``) and ``hint`` what to do
    instead; both are also in the audit trail's refused record.
    """

    __module__ = "governed_db"

    def __init__(self, message: str = "", *, rule_id: str | None = None, hint: str = "") -> None:
        self.rule_id = rule_id
        self.reason = message
        self.hint = hint
        if hint:
            message = f"{message} {hint}"
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_governance, (type(self), self.reason, self.rule_id, self.hint))


def _rebuild_governance(
    cls: type[GovernanceError], reason: str, rule_id: str | None, hint: str
) -> GovernanceError:
    if cls.__init__ is GovernanceError.__init__:
        return cls(reason, rule_id=rule_id, hint=hint)
    return cls(reason)


class UnreadableQueryError(GovernanceError, TypeError):
    """The query is of a type governed_db cannot read exactly (refused).

    Also a ``TypeError``, which is what psycopg raises for a query that is not
    ``str``, ``bytes`` or a ``psycopg.sql`` object.
    """

    __module__ = "governed_db"


class PolicyError(GovernanceError):
    """A policy file or object is invalid.

    ``path``, ``line`` and ``key`` locate the problem when it comes from a file.
    """

    __module__ = "governed_db"

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.key = key
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)


class AuditError(GovernanceError):
    """An audit record could not be written; with fail_closed the statement did not run."""

    __module__ = "governed_db"
