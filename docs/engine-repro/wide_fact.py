"""A fact with more fields than the engine holds (254) ends its batch as if it were complete.

Upstream durable-rules 2.0.28 silently drops that fact and every fact after it in the batch,
and when it was the first fact, crashes while running the actions (an unset state handle).
The bundled engine fails the batch with error 302 (patch `batch-errors`).
Run: python docs/engine-repro/wide_fact.py [--upstream]
"""

from _engine import host, outcome

engine_host, _ = host()
fired = []
engine_host.register_rulesets({"t": {
    "r": {"all": [{"a": {"kind": "x"}}], "run": lambda c: fired.append(c._m["a"]["id"])},
    "start": {"all": [{"s": {"kind": "start"}}], "run": lambda c: None}}})
engine_host.assert_facts("t", [{"sid": "1", "id": "s", "kind": "start"}])
wide = {"sid": "1", "id": "wide", "kind": "x", **{f"field_{i}": i for i in range(300)}}
narrow = {"sid": "1", "id": "narrow", "kind": "x"}
try:
    engine_host.assert_facts("t", [wide, narrow])
except Exception as error:  # the bundled engine: "Could not assert facts, error code: 302"
    outcome("302" in str(error), f"the batch failed: {error}")
else:
    outcome(False, f"the batch passed, and these facts fired: {fired} (the narrow fact was dropped)")
