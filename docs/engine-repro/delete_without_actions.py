"""Deleting a session in which no action has run frees two pointers that were never set.

Upstream durable-rules 2.0.28 crashes (SIGSEGV, or "free(): invalid pointer") on most builds,
and survives on some. The bundled engine sets them (patch `state-context-init`).
Run: python docs/engine-repro/delete_without_actions.py [--upstream]
"""

from _engine import host, outcome

engine_host, _ = host()
engine_host.register_rulesets({"t": {"r": {"all": [{"a": {"kind": "x"}}, {"b": {"kind": "y"}}],
                                           "run": lambda c: None}}})
for sid in range(20):
    engine_host.assert_fact("t", {"sid": str(sid), "id": "1", "kind": "x"})  # no rule completes
    engine_host.delete_state("t", str(sid))
outcome(True, "deleted 20 sessions in which no action ran")
