#!/usr/bin/env python3
"""Checks of the alerting rules and the dashboard (k8s/check.sh runs `check`).

    python3 k8s/monitoring/check.py check          # everything below, with promtool
    python3 k8s/monitoring/check.py extract DIR    # DIR/game-rewards.rules.yaml (its spec),
                                                   # DIR/alerts.test.yaml, and
                                                   # DIR/dashboard.rules.yaml (the dashboard's
                                                   # queries as recording rules, to parse them)
    python3 k8s/monitoring/check.py coverage       # every alert has firing and quiet tests
    python3 k8s/monitoring/check.py dashboard      # the dashboard's structure

prometheusrule.yaml is the one source of the rules: Kubernetes applies it as it is, and
promtool reads its `spec` (a plain rule file) extracted here, so the two cannot disagree.
`check` also runs every test case against rules mutated to break it (a case that passes
anyway could not fail), and checks the dashboard: it parses, its panels are well formed and
do not overlap, every variable it uses is defined, every query parses (promtool).
It prints one line per check and ends with `monitoring: N passed, M failed`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from metrics_used import DASHBOARD, RULES, dashboard_expressions  # noqa: E402

TESTS = HERE / "alerts.test.yaml"
RULE_FILE = "game-rewards.rules.yaml"
DASHBOARD_RULE_FILE = "dashboard.rules.yaml"


def spec_groups(path: Path = RULES) -> list[dict]:
    doc = yaml.safe_load(path.read_text())
    return doc["spec"]["groups"]


def alerts(path: Path = RULES) -> list[dict]:
    return [r for g in spec_groups(path) for r in g["rules"] if "alert" in r]


def grafana_to_promql(expr: str) -> str:
    """A dashboard query with Grafana's variables replaced by something PromQL accepts."""
    expr = re.sub(r"\$\{?__(rate_interval|interval|range)\}?", "5m", expr)
    return re.sub(r"\$\{[^}]*\}|\$\w+", "x", expr)


def extract(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    rules = out / RULE_FILE
    rules.write_text(
        "# Extracted from k8s/monitoring/prometheusrule.yaml (spec) by check.py; do not edit.\n"
        + yaml.safe_dump({"groups": spec_groups()}, sort_keys=False, width=1000))
    shutil.copy(TESTS, out / TESTS.name)
    dash = out / DASHBOARD_RULE_FILE
    queries = [{"record": f"dashboard:query_{i}", "expr": grafana_to_promql(expr)}
               for i, (_, expr) in enumerate(dashboard_expressions(DASHBOARD))]
    dash.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": queries}]},
                                   sort_keys=False, width=1000))
    return [rules, out / TESTS.name, dash]


def coverage_problems(rules: Path = RULES, tests: Path = TESTS) -> list[str]:
    """Each alert must be tested firing and quiet, and a `for:` alert pending (quiet at a
    time when the same test group expects it firing later); tests must name only alerts
    that exist."""
    names = {r["alert"]: r for r in alerts(rules)}
    doc = yaml.safe_load(tests.read_text())
    seen: dict[str, set[str]] = {a: set() for a in names}
    problems = []
    for t in doc.get("tests") or []:
        cases = t.get("alert_rule_test") or []
        for c in cases:
            if c["alertname"] not in names:
                problems.append(f"test {t.get('name')!r} names unknown alert {c['alertname']}")
                continue
            seen[c["alertname"]] |= case_kind(c, cases)
    for a, rule in names.items():
        wanted = ["firing", "quiet"] + (["pending"] if rule.get("for") else [])
        problems += [f"{a} has no {kind} test case" for kind in wanted if kind not in seen[a]]
    return problems


# Mutations of the rules, each with the test cases it must break: a case that still passes
# under its mutation could not fail, and is reported.
MUTATIONS = {
    # The alert never fires: every firing case must fail.
    "firing": ("never fires", lambda r: {**r, "expr": "vector(0) > 1"}),
    # The alert always fires, at once: every quiet case must fail.
    "quiet": ("always fires", lambda r: {k: v for k, v in {**r, "expr": "vector(1)"}.items()
                                          if k != "for"}),
    # The alert has no `for:`: every pending case (quiet before firing later) must fail.
    "pending": ("has no for:", lambda r: {k: v for k, v in r.items() if k != "for"}),
}


def case_kind(case: dict, cases: list[dict]) -> set[str]:
    if case.get("exp_alerts"):
        return {"firing"}
    kinds = {"quiet"}
    when = parse_duration(case["eval_time"])
    if any(x["alertname"] == case["alertname"] and x.get("exp_alerts")
           and parse_duration(x["eval_time"]) > when for x in cases):
        kinds.add("pending")
    return kinds


def mutation_problems(tmp: Path, promtool: str) -> list[str]:
    """Run the tests of each kind against the rules mutated to break them."""
    doc = yaml.safe_load(TESTS.read_text())
    with_for = {r["alert"] for r in alerts() if r.get("for")}
    problems = []
    for kind, (what, mutate) in MUTATIONS.items():
        subset, expected = [], set()
        for t in doc.get("tests") or []:
            cases = t.get("alert_rule_test") or []
            keep = [c for c in cases if kind in case_kind(c, cases)
                    and (kind != "pending" or c["alertname"] in with_for)]
            if keep:
                subset.append({k: v for k, v in t.items() if k != "promql_expr_test"}
                              | {"alert_rule_test": keep})
                expected |= {c["alertname"] for c in keep}
        groups = [{**g, "rules": [mutate(r) if "alert" in r else r for r in g["rules"]]}
                  for g in spec_groups()]
        (tmp / f"mutant-{kind}.rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
        (tmp / f"mutant-{kind}.test.yaml").write_text(yaml.safe_dump(
            {**doc, "rule_files": [f"mutant-{kind}.rules.yaml"], "tests": subset}))
        run = subprocess.run([promtool, "test", "rules", f"mutant-{kind}.test.yaml"],
                             capture_output=True, text=True, cwd=tmp)
        broken = set(re.findall(r"alertname: (\w+), time:", run.stdout + run.stderr))
        for a in sorted(expected - broken):
            problems.append(f"{a}: its {kind} cases still pass when the alert {what}")
    return problems


GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__interval_ms", "__range", "__range_s",
                    "__range_ms", "__name", "__all"}


def dashboard_problems(path: Path = DASHBOARD) -> list[str]:
    try:
        dash = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        return [f"{path.name} does not parse: {e}"]
    problems = [f"no {k}" for k in ("uid", "title", "schemaVersion", "panels") if k not in dash]
    variables = {v.get("name"): v for v in (dash.get("templating") or {}).get("list") or []}
    if "datasource" not in variables or variables["datasource"].get("type") != "datasource":
        problems.append("no `datasource` variable of type datasource")
    ids, boxes = set(), []
    for p in dash.get("panels") or []:
        who = f"panel {p.get('title')!r}"
        if p.get("id") in ids or not isinstance(p.get("id"), int):
            problems.append(f"{who}: id {p.get('id')!r} missing or not unique")
        ids.add(p.get("id"))
        g = p.get("gridPos") or {}
        if not all(isinstance(g.get(k), int) for k in ("h", "w", "x", "y")) \
                or g["x"] < 0 or g["x"] + g["w"] > 24:
            problems.append(f"{who}: gridPos {g} is not within the 24 columns")
            continue
        boxes.append((who, g))
        if p.get("type") == "row":
            continue
        if (p.get("datasource") or {}).get("uid") != "${datasource}":
            problems.append(f"{who}: datasource is not the ${{datasource}} variable")
        targets = p.get("targets") or []
        if not targets:
            problems.append(f"{who}: no query")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs) or None in refs:
            problems.append(f"{who}: refIds {refs} missing or repeated")
        for t in targets:
            if not (t.get("expr") or "").strip():
                problems.append(f"{who}: target {t.get('refId')} has no expr")
        if p.get("repeat"):
            v = variables.get(p["repeat"])
            if not v or not (v.get("multi") or v.get("includeAll")):
                problems.append(f"{who}: repeats over {p['repeat']!r}, not a multi-value variable")
    for i, (a, ga) in enumerate(boxes):
        for b, gb in boxes[i + 1:]:
            if ga["x"] < gb["x"] + gb["w"] and gb["x"] < ga["x"] + ga["w"] \
                    and ga["y"] < gb["y"] + gb["h"] and gb["y"] < ga["y"] + ga["h"]:
                problems.append(f"{a} and {b} overlap")
    text = json.dumps(dash.get("panels")) + json.dumps(
        [v for v in variables.values() if v.get("type") == "query"])
    for name in sorted(set(re.findall(r"\$\{?(\w+)", text))):
        if name not in variables and name not in GRAFANA_BUILTINS:
            problems.append(f"uses ${name}, which is not a variable of the dashboard")
    return problems


def parse_duration(s: str | int) -> float:
    if isinstance(s, (int, float)):
        return float(s)
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    total, pos = 0.0, 0
    for m in re.finditer(r"(\d+)(ms|[smhdwy])", s):
        if m.start() != pos:
            raise ValueError(f"bad duration {s!r}")
        total += int(m.group(1)) * units[m.group(2)]
        pos = m.end()
    if pos != len(s) or not s:
        raise ValueError(f"bad duration {s!r}")
    return total


def check() -> int:
    passed = failed = 0

    def report(ok: bool, what: str, detail: str = "") -> None:
        nonlocal passed, failed
        if ok:
            passed += 1
            print(f"ok    {what}")
        else:
            failed += 1
            print(f"FAIL  {what}" + (f":\n{detail.rstrip()}" if detail else ""))

    promtool = shutil.which("promtool")
    with tempfile.TemporaryDirectory() as tmp:
        rules, tests, dash = extract(Path(tmp))
        if not promtool:
            report(False, "promtool is not installed (apt-get install prometheus; .ci/run does it)")
        else:
            for what, args in (
                (f"promtool check rules (the PrometheusRule's spec, {len(alerts())} alerts)",
                 ["check", "rules", str(rules)]),
                (f"promtool test rules ({TESTS.name})", ["test", "rules", str(tests)]),
                (f"promtool parses every dashboard query ({DASHBOARD.name})",
                 ["check", "rules", str(dash)]),
            ):
                run = subprocess.run([promtool, *args], capture_output=True, text=True, cwd=tmp)
                report(run.returncode == 0, what, run.stdout + run.stderr)
        problems = dashboard_problems()
        report(not problems, f"{DASHBOARD.name} parses, its panels are well formed and placed",
               "\n".join(problems))
        problems = coverage_problems()
        report(not problems, "every alert is tested firing, quiet and (with for:) pending",
               "\n".join(problems))
        if promtool:
            problems = mutation_problems(Path(tmp), promtool)
            report(not problems, "each of those cases fails against rules mutated to break it",
                   "\n".join(problems))
    print(f"monitoring: {passed} passed, {failed} failed")
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    cmd = argv[0] if argv else "check"
    if cmd == "check" and len(argv) <= 1:
        return check()
    if cmd == "extract" and len(argv) == 2:
        for p in extract(Path(argv[1])):
            print(p)
        return 0
    if cmd in ("coverage", "dashboard") and len(argv) == 1:
        problems = coverage_problems() if cmd == "coverage" else dashboard_problems()
        for p in problems:
            print(p)
        return 1 if problems else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
