"""final-reads-agree: after the faults are healed, every node's final read of a key saw the same value."""

import json

from faultbed.checkers.result import Result
from faultbed.workloads.register import RegisterWorkload

FINAL_PROCESS_BASE = 1_000_000  # faultbed's final reads run as processes from here


class FinalReadsAgree:
    name = "final-reads-agree"
    description = "every node's final read of a key returned the same value"

    def check(self, history, spec, out_dir):
        invoked, seen = {}, {}
        for event in history:
            process = event.get("process")
            if not isinstance(process, int) or process < FINAL_PROCESS_BASE or event.get("f") != "read":
                continue
            if event["type"] == "invoke":
                invoked[process] = event["key"]
            elif event["type"] == "ok":
                seen.setdefault(invoked[process], set()).add(json.dumps(event["value"]))
        disagree = {key: sorted(values) for key, values in seen.items() if len(values) > 1}
        summary = f"{len(disagree)} keys disagree" if disagree else f"{len(seen)} keys agree"
        return Result(self.name, not disagree if seen else "unknown", {"disagree": disagree}, summary)


class PrimaryRegister(RegisterWorkload):
    name = "primarykv-register"
    description = "register, also checked for agreeing final reads"
    checkers = ("linearizable", "final-reads-agree")


FINAL_READS_AGREE = FinalReadsAgree()
WORKLOAD = PrimaryRegister()
