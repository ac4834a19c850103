"""`ssm audit`: parallel checking, the reports (escaped, self-contained, atomic), history nights.

Most tests use a fake checker (plan files are JSON descriptions of the findings to report), so
that they test the audit and not the rules; the last ones run the real checker on facts/.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import FACTS
from ssm_rules.audit import files as report_files
from ssm_rules.audit import runner
from ssm_rules.audit.report import markdown_escape
from ssm_rules.cli import main
from ssm_rules.errors import PlanProblem, UsageError
from ssm_rules.pipeline import PlanResult

AS_OF = date(2026, 11, 27)
HOSTILE = "<script>alert('x')</script>"


# --- a fake checker: each plan file is JSON saying what to report -----------------------------

@dataclass
class FakeFinding:
    data: dict

    @property
    def severity(self) -> str:
        return self.data["severity"]

    def to_json(self) -> dict:
        return dict(self.data)


@dataclass
class FakeRule:
    title: str
    severity: str
    guidance: tuple = ("G60",)


class FakeChecker:
    rules = {"SSM-BDU-001": FakeRule("Every opportunity has a key decision leader", "error"),
             "SSM-REL-002": FakeRule("Every owned relationship has a goal", "warning")}

    def check_file(self, file: str, as_of: date) -> PlanResult:
        spec = json.loads(Path(file).read_text())
        if spec.get("sleep"):
            time.sleep(spec["sleep"])
        if spec.get("explode"):
            raise RuntimeError("boom")
        if spec.get("die"):
            os._exit(3)  # a crash in the engine's C core takes the whole worker process with it
        document = SimpleNamespace(data={"account": {"id": spec.get("account"), "name": spec.get("name"),
                                                     "owner": spec.get("owner")}})
        if "errors" in spec:
            return PlanResult(file=file, account=spec.get("account"), document=document,
                              errors=[PlanProblem(message, 5, 3, "account.ownr") for message in spec["errors"]])
        findings = [FakeFinding({
            "rule": item["rule"], "severity": item.get("severity", "error"), "guidance": ["G60"],
            "message": item.get("message", f"{item['rule']} on {item.get('subject', 'omni')}"),
            "subject": {"kind": "opportunity", "id": item.get("subject", "omni")},
            "location": {"file": file, "line": item.get("line", 10), "column": 5, "path": item.get("path", "opportunities[0]")},
            "next_action": {"text": item.get("action", f"Fix {item['rule']}"), "owner": item.get("owner", spec["owner"])},
        }) for item in spec.get("findings", [])]
        return PlanResult(file=file, account=spec["account"], findings=findings, account_owner=spec["owner"],
                          document=document,
                          outcome={"met": spec.get("met", ["G80", "G84"]), "missing": spec.get("missing", ["G81"])})


def fake_factory(options: dict) -> FakeChecker:
    if options.get("rule_dirs") == ("broken",):
        raise UsageError("broken/pack.yaml: not a rule pack")
    if options.get("rule_dirs") == ("segfault",):
        os._exit(11)  # the engine's C core dies while compiling the rules
    return FakeChecker()


@pytest.fixture
def fake_checker(monkeypatch):
    monkeypatch.setattr(runner, "make_checker", fake_factory)


def write_plan(directory: Path, name: str, **spec) -> str:
    path = directory / f"{name}.json"
    path.write_text(json.dumps(spec))
    return str(path)


def portfolio(directory: Path) -> Path:
    plans = directory / "plans"
    plans.mkdir()
    write_plan(plans, "acme", account="acme", owner="jane.doe",
               findings=[{"rule": "SSM-BDU-001"}, {"rule": "SSM-REL-002", "severity": "warning", "subject": "c1",
                                                   "path": "contacts[0]"}])
    write_plan(plans, "globex", account="globex", owner="sam.lee", errors=["unknown key `ownr` in account"])
    write_plan(plans, "initech", account="initech", owner="sam.lee", met=["G80", "G81", "G82", "G83", "G84", "G85"],
               missing=[])
    return plans


def check_all(files, **options):
    """`runner.check_plans`, collecting the results in file order (as the spool does with ORDER BY)."""
    results: dict[int, runner.AuditedPlan] = {}

    def keep(position, result):
        assert position not in results  # every file gets exactly one result
        results[position] = result

    catalog = runner.check_plans(files, AS_OF, on_result=keep, checker_factory=fake_factory, **options)["rules"]
    assert sorted(results) == list(range(len(files)))
    return [results[position] for position in range(len(files))], catalog


def audit(runner_, *args):
    """`ssm audit ARGS`, in this process unless ARGS ask for --jobs (worker processes cost ~1 s)."""
    args = [str(arg) for arg in args]
    return runner_.invoke(main, ["audit", *args, *([] if "--jobs" in args else ["--jobs", "1"])])


# --- the runner -------------------------------------------------------------------------------

def test_results_come_back_in_file_order_whatever_the_workers_do(tmp_path):
    files = [write_plan(tmp_path, f"p{i:02}", account=f"p{i:02}", owner="jo", sleep=0.05 if i % 3 == 0 else 0,
                        findings=[{"rule": "SSM-BDU-001"}]) for i in range(24)]
    seen = []
    results, catalog = check_all(files, jobs=2, on_progress=lambda done, total: seen.append((done, total)))
    assert [result.file for result in results] == files
    assert all(result.findings[0]["rule"] == "SSM-BDU-001" for result in results)
    assert catalog["SSM-BDU-001"]["title"] == "Every opportunity has a key decision leader"
    assert seen[-1] == (24, 24) and [done for done, _ in seen] == sorted(done for done, _ in seen)
    serial, _ = check_all(files, jobs=1)
    assert [r.to_json() for r in serial] == [r.to_json() for r in results]


def test_a_plan_that_crashes_the_checker_does_not_stop_the_audit(tmp_path):
    files = [write_plan(tmp_path, "a", account="a", owner="jo"), write_plan(tmp_path, "b", explode=True),
             write_plan(tmp_path, "c", account="c", owner="jo")]
    results, _ = check_all(files, jobs=1)
    assert [result.valid for result in results] == [True, False, True]
    assert "the checker failed on this plan: RuntimeError: boom" in results[1].errors[0]["message"]


def test_a_plan_that_kills_its_worker_is_reported_and_the_others_are_checked(tmp_path):
    files = [write_plan(tmp_path, f"p{i:02}", account=f"p{i:02}", owner="jo", die=(i == 7),
                        findings=[{"rule": "SSM-BDU-001"}]) for i in range(30)]
    results, _ = check_all(files, jobs=2)
    assert [result.file for result in results] == files
    assert [i for i, result in enumerate(results) if not result.valid] == [7]
    assert "worker process died" in results[7].errors[0]["message"]
    assert all(len(result.findings) == 1 for i, result in enumerate(results) if i != 7)


def test_a_checker_that_cannot_be_built_is_a_usage_error(tmp_path):
    files = [write_plan(tmp_path, f"p{i}", account=f"p{i}", owner="jo") for i in range(3)]
    for jobs in (1, 2):
        with pytest.raises(UsageError, match="not a rule pack"):
            check_all(files, jobs=jobs, checker_options={"rule_dirs": ("broken",)})
    with pytest.raises(UsageError, match="died while building the checker"):
        check_all(files, jobs=2, checker_options={"rule_dirs": ("segfault",)})


# --- the command and its reports --------------------------------------------------------------

def test_portfolio_with_an_invalid_plan(runner, tmp_path, fake_checker):
    plans = portfolio(tmp_path)
    out = tmp_path / "report"
    result = audit(runner, plans, "--out", out, "--as-of", "2026-11-27", "--jobs", "2")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == (
        "Audited 3 plans as of 2026-11-27: 1 invalid, 1 error, 1 warning, 0 info.")
    assert sorted(p.name for p in out.iterdir()) == [".ssm-audit-report", "audit.json", "index.html", "summary.md"]

    document = json.loads((out / "audit.json").read_text())
    assert document["version"] == 1 and document["as_of"] == "2026-11-27"
    assert [p["account"] for p in document["plans"]] == ["acme", "globex", "initech"]
    assert document["summary"] == {"plans": 3, "error": 2, "warning": 1, "info": 0}  # the invalid plan counts
    acme, globex, initech = document["plans"]
    assert set(acme["findings"][0]) >= {"rule", "severity", "guidance", "message", "subject", "location", "next_action"}
    assert "first_seen" not in acme["findings"][0] and "history" not in document  # only with --history
    assert globex["findings"] == [] and globex["errors"][0]["message"] == "unknown key `ownr` in account"
    assert initech["outcome"]["missing"] == []

    page = (out / "index.html").read_text()
    assert "globex" in page and "unknown key `ownr` in account" in page and "invalid plan" in page
    assert "Every opportunity has a key decision leader" in page  # rule titles from the catalog
    assert "jane.doe" in page and "sam.lee" in page  # each owner's action list
    summary = (out / "summary.md").read_text()
    assert "**3 accounts** (1 invalid)" in summary and "globex" in summary


def test_plan_text_is_escaped_everywhere(runner, tmp_path, fake_checker):
    plans = tmp_path / "plans"
    plans.mkdir()
    write_plan(plans, "evil", account="evil", owner=f"{HOSTILE}", findings=[
        {"rule": "SSM-BDU-001", "message": f"Contact {HOSTILE} has no owner [click](http://evil.example)",
         "action": f"Call {HOSTILE} <img src=x onerror=alert(1)> [click](http://evil.example)"}])
    out = tmp_path / "report"
    assert audit(runner, plans, "--out", out, "--as-of", "2026-11-27").exit_code == 0
    page = (out / "index.html").read_text()
    assert "<script" not in page.lower() and "<img" not in page.lower()
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page  # shown as text in the tables
    assert "&lt;script&gt;alert('x')&lt;/script&gt;" in page  # ... and as text in the charts' SVG
    summary = (out / "summary.md").read_text()
    assert "<script>" not in summary and r"\<script\>" in summary
    assert r"\[click\](http" in summary  # no link: the brackets are escaped


def test_markdown_escape():
    assert markdown_escape("a_b *c* [d](e) <f> |h| ~i~") == r"a\_b \*c\* \[d\](e) \<f\> \|h\| \~i\~"
    # Inside a code span nothing is escaped: the digest pastes cleanly into chat and e-mail.
    assert markdown_escape("record it in `plan.approved_by_client` (a_b)") == (
        r"record it in `plan.approved_by_client` (a\_b)")
    assert markdown_escape("a lone ` backtick") == r"a lone \` backtick"
    assert markdown_escape("two\nlines") == "two lines"
    assert markdown_escape(3) == 3 and markdown_escape(None) == ""


def test_the_page_is_self_contained(runner, tmp_path, fake_checker):
    out = tmp_path / "report"
    assert audit(runner, portfolio(tmp_path), "--out", out, "--history", tmp_path / "h.db").exit_code == 0
    page = (out / "index.html").read_text()
    assert "<script" not in page and "<iframe" not in page and "@import" not in page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", page)
    assert "default-src 'none'" in page  # the browser would refuse anything from the network anyway
    assert page.count("<svg") >= 4  # severity, outcome, rules, owners


def test_two_nights_with_a_plan_fixed_and_a_plan_broken(runner, tmp_path, fake_checker):
    plans = portfolio(tmp_path)
    out, db = tmp_path / "report", tmp_path / "history.sqlite"
    result = audit(runner, plans, "--out", out, "--history", db, "--as-of", "2026-11-26")
    assert result.exit_code == 0, result.output
    assert "first recorded run" in result.output
    first = json.loads((out / "audit.json").read_text())
    assert first["history"]["previous_run"] is None and first["history"]["new"] == 2
    assert {f["first_seen"] for p in first["plans"] for f in p["findings"]} == {"2026-11-26"}

    # Night 2: acme fixed its error; initech, clean yesterday, now lacks a key decision leader.
    write_plan(plans, "acme", account="acme", owner="jane.doe",
               findings=[{"rule": "SSM-REL-002", "severity": "warning", "subject": "c1", "path": "contacts[0]", "line": 44}])
    write_plan(plans, "initech", account="initech", owner="sam.lee",
               findings=[{"rule": "SSM-BDU-001", "subject": "erp", "message": "Opportunity 'ERP' has no key decision leader."}])
    result = audit(runner, plans, "--out", out, "--history", db, "--as-of", "2026-11-27")
    assert result.exit_code == 0, result.output
    assert "since 2026-11-26: 1 new, 1 resolved" in result.output
    document = json.loads((out / "audit.json").read_text())
    assert document["history"]["previous_run"] == "2026-11-26"
    assert (document["history"]["new"], document["history"]["resolved"]) == (1, 1)
    acme, globex, initech = document["plans"]
    assert acme["findings"][0]["first_seen"] == "2026-11-26"  # moved to line 44: the same finding
    assert initech["findings"][0]["first_seen"] == "2026-11-27"
    assert globex["invalid_since"] == "2026-11-26"
    page = (out / "index.html").read_text()
    changes = page[page.index('id="changes"'):page.index('id="owners"')]
    assert "Opportunity &#39;ERP&#39; has no key decision leader." in changes  # new
    assert "SSM-BDU-001 on omni" in changes and "was open 1 d" in changes  # resolved
    assert "Open findings over time" in page  # the trend, from two runs
    summary = (out / "summary.md").read_text()
    assert "Since 2026-11-26: **1 new**, **1 resolved**" in summary
    assert "### New since 2026-11-26" in summary and "### Resolved" in summary

    history = runner.invoke(main, ["history", "--db", str(db)])
    assert [line.split()[0] for line in history.output.splitlines()[1:]] == ["2026-11-26", "2026-11-27"]


def new_counts(out: Path) -> dict[str, int]:
    """Every place the report counts new findings: the card, the account rows, the owners,
    "What changed", summary.md and audit.json (its count, and the findings first seen today)."""
    page = (out / "index.html").read_text()
    document = json.loads((out / "audit.json").read_text())
    attention = page[page.index("Accounts that need attention"):page.index('id="changes"')]
    rows = re.findall(r'<td class="num">(?:<span class="tag new">\+(\d+)</span>|<span class="muted">(0)</span>)</td>',
                      attention)
    owners = page[page.index('id="owners"'):]
    summary = (out / "summary.md").read_text()
    in_summary = re.search(r"\*\*(\d+) new\*\*", summary)
    return {
        "card": int(re.search(r'<div class="label">New</div>\s*<div class="value">([\d,]+)</div>', page).group(1)),
        "accounts": sum(int(added or zero) for added, zero in rows),
        "owners": sum(int(n) for n in re.findall(r" · (\d+) new</div>", owners)),
        "what changed": int(re.search(r'<h3>New findings</h3><span class="muted">(\d+)</span>', page).group(1)),
        "summary.md": int(in_summary.group(1)) if in_summary else (
            document["history"]["new"] if "every finding is new" in summary else -1),
        "audit.json": document["history"]["new"],
        "first seen today": sum(f["first_seen"] == document["as_of"] for p in document["plans"] for f in p["findings"]),
    }


def test_new_means_the_same_everywhere_on_the_first_run_and_after(runner, tmp_path, fake_checker):
    """On a first run the New card said 2 ("first run: all new") while every account row and
    "What changed" said 0. New is one thing: first seen in this run."""
    plans = portfolio(tmp_path)
    out, db = tmp_path / "report", tmp_path / "history.sqlite"
    assert audit(runner, plans, "--out", out, "--history", db, "--as-of", "2026-11-26").exit_code == 0
    first = new_counts(out)
    assert set(first.values()) == {2}, first
    write_plan(plans, "initech", account="initech", owner="sam.lee",
               findings=[{"rule": "SSM-BDU-001", "subject": "erp", "message": "Opportunity 'ERP' has no KDL."}])
    assert audit(runner, plans, "--out", out, "--history", db, "--as-of", "2026-11-27").exit_code == 0
    second = new_counts(out)
    assert set(second.values()) == {1}, second


def test_same_date_rerun_replaces_the_run(runner, tmp_path, fake_checker):
    plans = portfolio(tmp_path)
    out, db = tmp_path / "report", tmp_path / "history.sqlite"
    for _ in range(2):
        assert audit(runner, plans, "--out", out, "--history", db, "--as-of", "2026-11-27").exit_code == 0
    write_plan(plans, "acme", account="acme", owner="jane.doe", findings=[])
    assert audit(runner, plans, "--out", out, "--history", db, "--as-of", "2026-11-27").exit_code == 0
    runs = json.loads(runner.invoke(main, ["history", "--db", str(db), "--format", "json"]).output)["runs"]
    assert [(r["as_of"], r["error"], r["warning"]) for r in runs] == [("2026-11-27", 0, 0)]


def test_a_failed_run_leaves_report_and_history_as_they_were(runner, tmp_path, fake_checker, monkeypatch):
    plans = portfolio(tmp_path)
    out, db = tmp_path / "report", tmp_path / "history.sqlite"
    assert audit(runner, plans, "--out", out, "--history", db, "--as-of", "2026-11-26").exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    write_plan(plans, "acme", account="acme", owner="jane.doe", findings=[])

    from ssm_rules.audit import report

    def broken(*args, **kwargs):
        raise RuntimeError("template bug")

    monkeypatch.setattr(report, "render_markdown", broken)  # crash after the history was written
    result = audit(runner, plans, "--out", out, "--history", db, "--as-of", "2026-11-27")
    assert result.exit_code == 2 and "internal error: RuntimeError: template bug" in result.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    runs = json.loads(runner.invoke(main, ["history", "--db", str(db), "--format", "json"]).output)["runs"]
    assert [run["as_of"] for run in runs] == ["2026-11-26"]


def test_report_files_are_never_half_written(tmp_path, monkeypatch):
    out = tmp_path / "report"
    report_files.replace_directory(out, {"index.html": "old page", "summary.md": "old summary"})
    written = []
    real_write = report_files._write

    def failing_write(path, text):
        if written:
            raise OSError(28, "No space left on device")
        written.append(path)
        real_write(path, text)

    monkeypatch.setattr(report_files, "_write", failing_write)
    with pytest.raises(UsageError, match="report: cannot write the report: No space left on device"):
        report_files.replace_directory(out, {"index.html": "new page", "summary.md": "new summary"})
    assert (out / "index.html").read_text() == "old page" and (out / "summary.md").read_text() == "old summary"
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # no temporary directory left behind
    monkeypatch.setattr(report_files, "_write", real_write)
    report_files.replace_directory(out, {"index.html": "new page"})
    assert sorted(p.name for p in out.iterdir()) == [".ssm-audit-report", "index.html"]  # replaced whole
    assert oct(out.stat().st_mode & 0o777) != oct(0o700)  # readable like any directory, not mkdtemp's private


def test_a_process_killed_while_writing_leaves_the_old_report(tmp_path):
    out = tmp_path / "report"
    report_files.replace_directory(out, {"index.html": "old page", "summary.md": "old summary"})
    script = textwrap.dedent(f"""
        import os
        from ssm_rules.audit import files
        real = files._write
        def write_then_die(path, text):
            real(path, text)
            os._exit(9)  # killed after the first file
        files._write = write_then_die
        files.replace_directory({str(out)!r}, {{"index.html": "new page", "summary.md": "new summary"}})
    """)
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert child.returncode == 9, child.stderr
    assert (out / "index.html").read_text() == "old page" and (out / "summary.md").read_text() == "old summary"
    leftovers = [p for p in tmp_path.iterdir() if p.name != "report"]
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".report.")  # hidden, and cleaned up later
    for path in [*leftovers[0].iterdir(), leftovers[0]]:  # nothing in it changed for two hours
        os.utime(path, (time.time() - 7200, time.time() - 7200))
    report_files.replace_directory(out, {"index.html": "new page"})
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_a_report_inside_the_portfolio_is_not_read_as_a_plan(runner, tmp_path, fake_checker):
    plans = portfolio(tmp_path)
    for _ in range(2):
        result = audit(runner, plans, "--out", plans / "report")
        assert result.exit_code == 0, result.output
        assert result.output.startswith("Audited 3 plans")


def test_a_directory_that_is_not_a_report_is_never_replaced(runner, tmp_path, fake_checker):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    result = audit(runner, portfolio(tmp_path), "--out", precious)
    assert result.exit_code == 2 and "is not an ssm audit report" in result.output
    assert (precious / "thesis.tex").read_text() == "years of work"


def test_usage_errors_exit_2(runner, tmp_path, fake_checker):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = audit(runner, empty, "--out", tmp_path / "r")
    assert result.exit_code == 2 and "no plan files" in result.output
    result = audit(runner, tmp_path / "nope", "--out", tmp_path / "r")
    assert result.exit_code == 2 and "no such file or directory" in result.output
    result = audit(runner, portfolio(tmp_path), "--out", tmp_path / "r", "--rules", "broken")
    assert result.exit_code == 2 and "not a rule pack" in result.output
    result = audit(runner, tmp_path / "plans", "--out", tmp_path / "r", "--as-of", "27/11/2026")
    assert result.exit_code == 2
    assert not (tmp_path / "r").exists()


def test_fail_on(runner, tmp_path, fake_checker):
    plans = portfolio(tmp_path)
    assert audit(runner, plans, "--out", tmp_path / "r").exit_code == 0  # findings are the audit's output
    assert audit(runner, plans, "--out", tmp_path / "r", "--fail-on", "error").exit_code == 1
    (plans / "globex.json").unlink()
    write_plan(plans, "acme", account="acme", owner="jane.doe",
               findings=[{"rule": "SSM-REL-002", "severity": "warning"}])
    assert audit(runner, plans, "--out", tmp_path / "r", "--fail-on", "error").exit_code == 0
    assert audit(runner, plans, "--out", tmp_path / "r", "--fail-on", "warning").exit_code == 1


# --- with the real checker --------------------------------------------------------------------

def _real_checker_available() -> bool:
    from ssm_rules import pipeline

    return hasattr(pipeline, "Checker")


needs_checker = pytest.mark.skipif(not _real_checker_available(), reason="pipeline.Checker is not built yet")


@needs_checker
def test_audit_of_the_sample_plans(runner, tmp_path):
    out = tmp_path / "report"
    result = audit(runner, FACTS, "--out", out, "--history", tmp_path / "h.db", "--as-of", "2026-11-27", "--jobs", "2")
    assert result.exit_code == 0, result.output
    document = json.loads((out / "audit.json").read_text())
    assert len(document["plans"]) == len(list(FACTS.glob("*.yaml")))
    assert all(p["findings"] or p.get("errors") or p.get("outcome") for p in document["plans"])
    assert all("first_seen" in f for p in document["plans"] for f in p["findings"])
    page = (out / "index.html").read_text()
    assert "<script" not in page and "Action lists by owner" in page
    summary = (out / "summary.md").read_text()
    assert "record its date in `plan.approved_by_client`" in summary  # a code span, pasted as written
    assert "\\`" not in summary and "`plan.approved\\_by" not in summary


def test_the_same_portfolio_gives_the_same_page_byte_for_byte(runner, tmp_path):
    """Reports are kept and compared from night to night: nothing random in them (pygal names
    each chart with a random UUID unless told otherwise)."""
    pages = []
    for name in ("first", "second"):
        out = tmp_path / name
        assert audit(runner, FACTS, "--out", out, "--as-of", "2026-11-27", "--no-cache").exit_code == 0
        pages.append((out / "index.html").read_bytes())
    assert b"pygal-chart" in pages[0]
    assert pages[0] == pages[1]


@needs_checker
def test_a_contact_named_like_a_script_shows_as_text(runner, tmp_path):
    plans = tmp_path / "plans"
    plans.mkdir()
    source = (FACTS / "banca-valdadige.yaml").read_text()  # Davide Conti is named in a next action
    (plans / "banca.yaml").write_text(source.replace("Davide Conti", "<script>alert(1)</script>"))
    out = tmp_path / "report"
    assert audit(runner, plans, "--out", out, "--as-of", "2026-11-27", "--jobs", "1").exit_code == 0
    page = (out / "index.html").read_text()
    assert "<script" not in page
    assert "Ask sponsor &lt;script&gt;alert(1)&lt;/script&gt; to identify the key decision leader" in page
    summary = (out / "summary.md").read_text()
    assert "<script>" not in summary and r"Ask sponsor \<script\>alert(1)\</script\>" in summary


@needs_checker
def test_the_configuration_applies_as_in_check(runner, tmp_path):
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "banca.yaml").write_text((FACTS / "banca-valdadige.yaml").read_text())
    settings = tmp_path / ".ssm.toml"
    settings.write_text('ignore = ["SSM-BDU-001"]\n[severity]\n"SSM-BDU-002" = "info"\n')
    out = tmp_path / "report"

    def findings(*options):
        result = audit(runner, plans, "--out", out, "--as-of", "2026-11-27", *options)
        assert result.exit_code == 0, result.output
        return {f["rule"]: f["severity"] for f in json.loads((out / "audit.json").read_text())["plans"][0]["findings"]}

    plain = findings("--isolated")
    assert plain["SSM-BDU-001"] == "error" and plain["SSM-BDU-002"] == "error"
    configured = findings("--config", settings)
    assert "SSM-BDU-001" not in configured and configured["SSM-BDU-002"] == "info"
    settings.write_text('ignore = ["SSM-NOPE-999"]\n')
    result = audit(runner, plans, "--out", out, "--config", settings)
    assert result.exit_code == 2 and "SSM-NOPE-999" in result.output


def test_what_a_killed_audit_left_beside_the_report_is_removed_by_the_next(runner, tmp_path, fake_checker):
    plans = portfolio(tmp_path)
    out = tmp_path / "report"
    # A killed audit's scratch and staging directories, a minute old (not the hour the age rule waits).
    for name in (".report.k1ll3d_x.spool.tmp", ".report.zz9xq2ab.tmp"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "spool.sqlite").write_text("half")
    victim = tmp_path / "precious"
    victim.mkdir()
    (tmp_path / ".report.linkxxxx.tmp").symlink_to(victim)  # not ours: never followed
    (tmp_path / ".report.v2.abcdefgh.spool.tmp").mkdir()  # report.v2's: its audit may be running
    result = audit(runner, plans, "--out", out, "--as-of", "2026-11-27", "--jobs", "1")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".report.linkxxxx.tmp", ".report.lock", ".report.v2.abcdefgh.spool.tmp", "plans", "precious", "report"]


def test_a_second_audit_of_the_same_report_waits_for_the_first(tmp_path):
    import threading

    out = tmp_path / "report"
    events = []
    first_inside = threading.Event()

    def first():
        with report_files.report_lock(out):
            events.append("first in")
            first_inside.set()
            time.sleep(0.5)
            events.append("first out")

    thread = threading.Thread(target=first)
    thread.start()
    first_inside.wait(10)
    with report_files.report_lock(out):
        events.append("second in")
    thread.join()
    assert events == ["first in", "first out", "second in"]


def test_audit_json_is_indented_as_json_dumps_would():
    # report._indented writes audit.json plan by plan; the bytes are json.dumps(indent=2)'s.
    from collections import OrderedDict

    from ssm_rules.audit.report import _indented

    deep: list = ["deep"]
    for _ in range(20):  # deeper than the prepared indentations
        deep = [deep]
    values = [
        {"plans": [{"file": "a.yaml", "valid": True, "errors": [], "outcome": {"met": ["G80"], "missing": []},
                    "findings": [{"rule": "SSM-BDU-001", "guidance": ["G60"], "message": "Zoë \"q\" \n\t\u2028 <x>",
                                  "location": {"line": 3, "column": None}, "subject": {}}]}],
         "numbers": [0, -1, 10 ** 30, 2.5, -0.0, 1e-07, float("nan"), float("inf"), True, False, None],
         "subclasses": OrderedDict(x=[OrderedDict(y="z")]), "deep": deep},
        [], {}, "text", 3, None, [[], {}, [{}]],
    ]
    for value in values:
        assert _indented(value, 0) == json.dumps(value, indent=2, ensure_ascii=False)
