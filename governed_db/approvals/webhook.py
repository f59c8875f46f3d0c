"""The approval webhook: a Slack-compatible JSON POST announcing a new request.

The payload has ``text`` (what Slack shows) plus ``approval_id``, ``statement``,
``facts``, ``estimated_rows``, ``requester``, ``rule_id`` and
``approve_command``. A webhook that fails changes nothing: the statement still
waits for a signed approval; the failure is reported in the refusal.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from governed_db.approvals.binding import ApprovalRequest

__all__ = ["payload", "post"]

_TIMEOUT = 5.0


def payload(request: ApprovalRequest, approve_command: str) -> dict[str, Any]:
    """The JSON body for ``request``."""
    tables = ", ".join(request.tables_written) or "no table"
    estimate = "unknown" if request.estimated_rows is None else str(request.estimated_rows)
    text = (
        f"Approval {request.id} requested by {request.requester_label} in "
        f"{request.environment}: {request.operation.upper()} on {tables} "
        f"(rule {request.rule_id}, estimate {estimate} rows).\n"
        f"```{request.statement}```\nApprove with: `{approve_command}`"
    )
    return {
        "text": text,
        "approval_id": request.id,
        "statement": request.statement,
        "facts": {"operation": request.operation, "tables_written": list(request.tables_written)},
        "estimated_rows": request.estimated_rows,
        "requester": dict(request.requester),
        "environment": request.environment,
        "rule_id": request.rule_id,
        "reason": request.reason,
        "expires_at": request.expires_at,
        "approve_command": approve_command,
    }


def post(url: str, request: ApprovalRequest, approve_command: str) -> str | None:
    """POST the payload; None on a 2xx answer, else what went wrong."""
    body = json.dumps(payload(request, approve_command)).encode("utf-8")
    req = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(req, timeout=_TIMEOUT) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        return f"webhook answered HTTP {exc.code}"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"webhook could not be reached: {getattr(exc, 'reason', exc)}"
    return None if 200 <= status < 300 else f"webhook answered HTTP {status}"
