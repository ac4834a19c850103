"""Registering more rules than an alpha node's lists hold overflows them.

Upstream durable-rules 2.0.28 writes the 256th rule that ends at one test one past its list
(heap corruption: a crash later, or a wrong answer), and fills the 512-slot table of tests on
one field so that a later fact's lookup loops forever. The bundled engine refuses such a
ruleset at registration (errors 108 and 106; patch `list-limits`).
Run: python docs/engine-repro/rule_limits.py [--upstream]   (upstream may hang: Ctrl-C)
"""

from _engine import host, outcome

engine_host, _ = host()
for count, same_test, code in [(256, True, "108"), (512, False, "106")]:
    # same_test: `count` rules all ending at the test f == 1; else `count` tests f == i.
    rules = {f"r{i}": {"all": [{"a": {"$and": [{"kind": "plan"}, {"f": 1 if same_test else i}]}}],
                       "run": lambda c: None} for i in range(count)}
    name = f"t{count}"
    try:
        engine_host.register_rulesets({name: rules})
    except Exception as error:
        outcome(code in str(error), f"{count} rules refused at registration: {error}")
        continue
    print(f"{count} rules registered; asserting a fact ...", flush=True)
    engine_host.assert_facts(name, [{"sid": "1", "id": "p", "kind": "plan", "f": 1, "g": 2}])
    outcome(False, f"{count} rules registered and ran on memory past the engine's lists")
