"""Signature checks of the verifier: trusted keys, deferred checks for keys introduced later."""

from __future__ import annotations

from typing import Any

from governed_db.audit.trust import PublicKeys
from governed_db.audit.verify_report import ChainSummary, VerifyReport

__all__ = ["SignatureChecks"]

_SPECIAL = frozenset({"genesis", "checkpoint", "close"})


class SignatureChecks:
    """Checks ``sig`` members; signatures by keys not (yet) known wait for the end."""

    keys: PublicKeys
    _deferred: list[tuple[ChainSummary, int, str, str, str, str]]

    def _problem(
        self,
        report: VerifyReport,
        severity: str,
        kind: str,
        message: str,
        at: tuple[str | None, int | None, str] = (None, None, ""),
    ) -> Any:
        raise NotImplementedError

    def _signature(
        self,
        data: dict[str, Any],
        computed: str,
        chain: ChainSummary,
        where: str,
        report: VerifyReport,
    ) -> None:
        seq = int(data["seq"])
        kind = data.get("kind")
        sig = data.get("sig")
        if sig is None:
            must = kind in _SPECIAL or chain.signing == "every"
            if must and chain.signing != "none":
                self._problem(
                    report,
                    "error",
                    "unsigned",
                    f"{kind} record is not signed (signature stripped or forged)",
                    (chain.id, seq, where),
                )
            return
        kid = str(data.get("kid"))
        result = self.keys.verify(kid, computed, str(sig))
        if result is None:
            self._deferred.append((chain, seq, kid, computed, str(sig), where))
        else:
            self._signed(chain, seq, kid, result, where, report)

    def _signed(
        self,
        chain: ChainSummary,
        seq: int,
        kid: str,
        valid: bool,
        where: str,
        report: VerifyReport,
    ) -> None:
        if not valid:
            self._problem(
                report,
                "error",
                "bad-signature",
                "signature does not verify: records up to here were changed and the "
                "chain re-hashed by someone without the key",
                (chain.id, seq, where),
            )
            return
        chain.kids.add(kid)
        if chain.closed and chain.recovered_by and seq == chain.last_seq:
            return  # the recovering process vouches for the tail, not the writer
        chain.signed_through = max(chain.signed_through, seq)
        if seq == 0:
            chain.genesis_trusted = True

    def _recheck_deferred(self, report: VerifyReport) -> None:
        """Signatures by keys unknown when read: a later rotation record may introduce them."""
        for chain, seq, kid, digest, sig, where in self._deferred:
            result = self.keys.verify(kid, digest, sig)
            if result is not None:
                self._signed(chain, seq, kid, result, where, report)
                if chain.recovered_by and seq == chain.last_seq:
                    chain.unvouched = max(0, seq - 1 - chain.signed_through)
                continue
            if kid in chain.unknown_kids:  # once per chain and key, not per signature
                continue
            chain.unknown_kids.add(kid)
            self._problem(
                report,
                "error",
                "unknown-key",
                f"signed with key {kid}, which is not among the trusted keys "
                f"({', '.join(self.keys.kids()) or 'none'}); its signatures are unchecked",
                (chain.id, seq, where),
            )
