"""A false comparison with another fact's field reads past the end of the rule's expressions.

Upstream durable-rules 2.0.28 (issue #381) crashes here with SIGSEGV, or answers from
whatever memory follows, depending on the memory layout: on one machine a case survives
that crashes on another, and the whole loop below survived upstream here while a single
case (`--only '$gt' 2 1`: x.p=2, y.p=1) crashed. The bundled engine gives the right answer every time
(patch `join-short-circuit`).
Run: python docs/engine-repro/comparison_join.py [--upstream] [--only OPERATOR LEFT RIGHT]
"""

import operator
import sys

from _engine import host, outcome

OPERATORS = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le,
             "$neq": operator.ne}

engine_host, _ = host()


def recorder(fired):
    return lambda c: fired.append(c._m["b"]["p"])  # one argument: durable runs it in-line


CASES = [(name, left, right) for name in OPERATORS for left, right in [(1, 2), (2, 1), (1, 1)]]
if "--only" in sys.argv:
    at = sys.argv.index("--only")
    CASES = [(sys.argv[at + 1], int(sys.argv[at + 2]), int(sys.argv[at + 3]))]
for number, (name, left, right) in enumerate(CASES):
    compare = OPERATORS[name]
    fired = []
    ruleset = f"t{number}_{left}_{right}"
    engine_host.register_rulesets({ruleset: {
        "r": {"all": [{"a": {"kind": "x"}}, {"b": {"$and": [{"kind": "y"}, {name: {"p": {"a": "p"}}}]}}],
              "run": recorder(fired)},
        "start": {"all": [{"s": {"kind": "start"}}], "run": lambda c: None},
        "catch_all": {"all": [{"f": {"$ex": {"kind": 1}}}, {"never": {"kind": "never"}}], "run": lambda c: None}}})
    engine_host.assert_fact(ruleset, {"sid": "1", "id": "s", "kind": "start"})
    engine_host.assert_fact(ruleset, {"sid": "1", "id": "1", "kind": "x", "p": left})
    print(f"y.p={right} {name} x.p={left} ...", end=" ", flush=True)
    engine_host.assert_fact(ruleset, {"sid": "1", "id": "2", "kind": "y", "p": right})
    outcome(bool(fired) == compare(right, left), f"fired={bool(fired)}")
    engine_host.delete_state(ruleset, "1")
