"""What redaction costs record(): the same entry with redaction on and off, side by side.

Two payloads: ``clean``, the benchmark's usual tool-call details (~200 bytes,
nothing to mask: the common case, where redaction walks the details and copies
nothing), and ``secret``, the same details plus request headers with a bearer
token and an API key (the copy-and-mask path). The contract: with the clean
payload, record()'s p50 with redaction stays under twice its p50 without.
"""

from __future__ import annotations

import time
from typing import Any

from cleveragents.domain.redaction import DEFAULT_REDACT_KEYS, DEFAULT_REDACT_PATTERNS, Redactor

from ._common import (
    ACTOR,
    CORRELATION_ID,
    DETAILS,
    EVENT_TYPE,
    RESOURCE,
    TempService,
    per_call_timer,
    percentile_us,
)

#: The usual details plus secrets to mask: a key that names one, a token in a string.
SECRET_DETAILS: dict[str, Any] = {
    **DETAILS,
    "request": {
        "headers": {"Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig", "X-Api-Key": "k-123"},
        "url": "https://api.example.com/v1/search",
    },
}
PAYLOADS: dict[str, dict[str, Any]] = {"clean": DETAILS, "secret": SECRET_DETAILS}


def _latencies_ns(fixture: TempService, details: dict[str, Any], calls: int) -> list[int]:
    """``calls`` record() calls, each timed; flushed afterwards so the queue never fills."""
    record = fixture.service.record
    clock = time.perf_counter_ns
    samples = [0] * calls
    for i in range(calls):
        start = clock()
        record(
            EVENT_TYPE,
            actor=ACTOR,
            resource=RESOURCE,
            details=details,
            correlation_id=CORRELATION_ID,
        )
        samples[i] = clock() - start
    if not fixture.service.flush(timeout=60):
        raise RuntimeError(f"flush failed: {fixture.service.stats()}")
    return samples


class RedactionCost:
    """record() p50 with redaction on and off, measured in alternating rounds in one process.

    10 rounds of 2,000 calls on each service, each round flushed before the next, so
    neither the queue filling nor drift in the machine's speed favours one side.
    """

    params = ("clean", "secret")
    param_names = ("payload",)
    rounds = 10
    calls_per_round = 2_000

    def setup(self, payload: str) -> None:
        self.plain = TempService("async", audit_redact=False)
        try:
            self.redacted = TempService("async", audit_redact=True)
        except BaseException:
            self.plain.close()
            raise
        self.p50_plain_us = self.p50_redacted_us = float("nan")
        self.plain.warm_up()
        self.redacted.warm_up()
        details = PAYLOADS[payload]
        plain: list[int] = []
        redacted: list[int] = []
        for _ in range(self.rounds):
            plain += _latencies_ns(self.plain, details, self.calls_per_round)
            redacted += _latencies_ns(self.redacted, details, self.calls_per_round)
        plain.sort()
        redacted.sort()
        self.p50_plain_us = percentile_us(plain, 50)
        self.p50_redacted_us = percentile_us(redacted, 50)

    def teardown(self, payload: str) -> None:
        # Both services first: TempService.close() checks that no writer thread is left.
        self.redacted.service.close()
        self.plain.service.close()
        try:
            self.redacted.close()
        finally:
            self.plain.close()

    def track_record_p50_redaction_off_us(self, payload: str) -> float:
        """record() p50 with audit_redact=False, in microseconds."""
        return self.p50_plain_us

    track_record_p50_redaction_off_us.unit = "us"  # type: ignore[attr-defined]

    def track_record_p50_redaction_on_us(self, payload: str) -> float:
        """record() p50 with the default redaction, in microseconds."""
        return self.p50_redacted_us

    track_record_p50_redaction_on_us.unit = "us"  # type: ignore[attr-defined]

    def track_record_p50_ratio(self, payload: str) -> float:
        """p50 on / p50 off: must stay under 2 for the clean payload."""
        return round(self.p50_redacted_us / self.p50_plain_us, 3)

    track_record_p50_ratio.unit = "ratio"  # type: ignore[attr-defined]


class RedactTime:
    """asv's timing of Redactor.redact() alone on each payload, per call (runs of 1,000)."""

    params = ("clean", "secret")
    param_names = ("payload",)
    calls = 1_000
    timer = staticmethod(per_call_timer(calls))

    def setup(self, payload: str) -> None:
        self.redactor = Redactor(DEFAULT_REDACT_KEYS, DEFAULT_REDACT_PATTERNS)
        self.details = PAYLOADS[payload]
        self.redactor.redact(self.details)  # fill the key cache, as a running service has

    def time_redact(self, payload: str) -> None:
        """Redactor.redact() of the payload: a walk (clean), or a walk and a masked copy."""
        redact = self.redactor.redact
        details = self.details
        for _ in range(self.calls):
            redact(details)
