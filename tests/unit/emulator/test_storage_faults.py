"""Fault rules: their spec syntax and defaults."""

from __future__ import annotations

import pytest

from azrestore.emulator.storage import FaultRule
from azrestore.errors import InputError


def test_fault_rule_from_spec() -> None:
    rule = FaultRule.from_spec("PutPage:status=503,retry_after=1,nth=3")
    assert rule == FaultRule("PutPage", "status", status=503, retry_after=1.0, nth=3)
    assert rule.error_code == "ServerBusy"
    assert rule.limit == 1
    rule = FaultRule.from_spec("putpage:reset,rate=0.05,seed=7")
    assert (rule.operation, rule.action, rule.rate, rule.seed) == ("PutPage", "reset", 0.05, 7)
    assert rule.limit is None
    assert FaultRule.from_spec("*:delay=0.5,times=2") == FaultRule("*", "delay", delay=0.5, times=2)
    assert FaultRule.from_spec("GetBlob:expire_sas").error_code == "AuthenticationFailed"
    rule = FaultRule.from_spec("GetBlob:status=500,code=OperationTimedOut")
    assert rule.error_code == "OperationTimedOut"
    assert FaultRule.from_spec("PutPage:status=500").error_code == "InternalError"


@pytest.mark.parametrize(
    "spec",
    [
        "PutPage",
        "Nope:status=503",
        "PutPage:explode",
        "PutPage:status=abc",
        "PutPage:status=503,colour=red",
        "PutPage:rate=0.5",
        "PutPage:status=503,rate=2",
        "PutPage:status=503,nth=0",
        "PutPage:reset,times=-1",
    ],
)
def test_fault_rule_from_spec_rejects(spec: str) -> None:
    with pytest.raises(InputError):
        FaultRule.from_spec(spec)
