"""The end of a chain: gaps, key validity, missing close records and recovered closes."""

from __future__ import annotations

from typing import Any

from governed_db.audit.trust import PublicKeys
from governed_db.audit.verify_report import ChainSummary, VerifyReport

__all__ = ["ChainEnd"]


class ChainEnd:
    """The verifier's checks once every record of a chain has been read."""

    keys: PublicKeys
    partial: bool
    allow_unsigned: bool

    def _problem(
        self,
        report: VerifyReport,
        severity: str,
        kind: str,
        message: str,
        at: tuple[str | None, int | None, str] = (None, None, ""),
    ) -> Any:
        raise NotImplementedError

    def _finish(self, chain: ChainSummary, report: VerifyReport) -> None:
        for lo, hi, where in chain.gaps:
            what = f"seq {lo}" if lo == hi else f"seq {lo}..{hi}"
            self._problem(
                report,
                "error",
                "deleted",
                f"{what} missing (records deleted)",
                (chain.id, lo, where),
            )
        self._key_validity(chain, report)
        if chain.signing == "none" and self.allow_unsigned:
            return
        at = (chain.id, chain.last_seq, chain.last_where)
        if not chain.closed:
            tail = chain.last_seq - chain.signed_through
            detail = (
                f"; seq {chain.signed_through + 1}..{chain.last_seq} ({tail} record(s)) "
                "come after the last signature and are vouched for by none"
                if tail > 0
                else ""
            )
            self._problem(
                report,
                "warning" if self.partial else "error",
                "truncated",
                "no close record: the tail was truncated, or the writer is still "
                f"running or crashed{detail}",
                at,
            )
            if tail > 0 and self.partial:
                self._problem(
                    report,
                    "warning",
                    "unsigned-tail",
                    f"{tail} record(s) after the last signature (seq "
                    f"{chain.signed_through + 1}..{chain.last_seq}) are not signed yet",
                    at,
                )
        elif chain.recovered_by:
            n = chain.unvouched
            vouched = (
                f"{n} record(s) (seq {chain.last_seq - n}..{chain.last_seq - 1}) after the "
                "writer's last signature are vouched for only by the recovering process"
                if n
                else "every record before it was signed by the writer"
            )
            self._problem(
                report,
                "warning",
                "recovered",
                f"chain was not closed by its writer: sealed by crash recovery (by chain "
                f"{chain.recovered_by[:12]}); {vouched}. A closed chain cut after a checkpoint "
                "and resealed looks the same: check it against a witness",
                at,
            )

    def _key_validity(self, chain: ChainSummary, report: VerifyReport) -> None:
        """A retired or revoked key may not sign a chain that started after that."""
        started = chain.started or ""
        for kid in sorted(chain.kids):
            revoked = self.keys.revoked_at(kid)
            if revoked is not None and (revoked == "" or started >= revoked):
                when = f" at {revoked}" if revoked else ""
                self._problem(
                    report,
                    "error",
                    "revoked-key",
                    f"signed with key {kid}, revoked{when}; the chain started {started}",
                    (chain.id, chain.first_seq, ""),
                )
                continue
            retired = self.keys.retired_at(kid)
            if retired is not None and started >= retired:
                self._problem(
                    report,
                    "error",
                    "retired-key",
                    f"signed with key {kid}, retired at {retired} by a rotation record; "
                    f"the chain started {started}, after that (the old key was used to "
                    "forge or continue a chain)",
                    (chain.id, chain.first_seq, ""),
                )
