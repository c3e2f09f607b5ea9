#!/usr/bin/env python3
"""Which metrics the alerts and the dashboard read, and whether a scrape has them.

    python3 k8s/monitoring/metrics_used.py                 # one metric name a line
    python3 k8s/monitoring/metrics_used.py --where         # ... with the alerts/panels using it
    python3 k8s/monitoring/metrics_used.py SCRAPE [SCRAPE...]
        # SCRAPE: Prometheus text format (a file, or - for stdin), e.g. the /metrics of each
        # role. Exits 1 naming every used metric that none of the scrapes has, 0 otherwise.

The names are the ones a scrape shows: a counter as `x_total`, a histogram as
`x_bucket`/`x_sum`/`x_count`. Series Prometheus makes itself (`up`, `scrape_*`, `ALERTS`)
and the outputs of our recording rules are not expected in a scrape; the recording rules'
own inputs are. The expressions come from the PrometheusRule (prometheusrule.yaml) and the
dashboard (grafana-dashboard.json, its panels' targets and its variables' queries).

PromQL is read by a small tokenizer, not a full parser: string literals, label matchers,
durations, `by (...)`-style label lists, keywords and function calls are removed, and every
identifier left is a metric name. test_metrics_used.py holds it to known expressions.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
RULES = HERE / "prometheusrule.yaml"
DASHBOARD = HERE / "grafana-dashboard.json"

# Series that exist in Prometheus without being in any scrape.
SYNTHETIC = {"up", "scrape_duration_seconds", "scrape_samples_scraped",
             "scrape_samples_post_metric_relabeling", "scrape_series_added",
             "ALERTS", "ALERTS_FOR_STATE"}

KEYWORDS = {
    # aggregations (followed by `by (...)`/`without (...)` or a parenthesis)
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
    "bottomk", "topk", "quantile", "limitk", "limit_ratio",
    # binary operators and modifiers
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "atan2",
    # literals
    "inf", "nan",
}

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", re.I)
_GRAFANA_VAR = re.compile(r"\$\{[^}]*\}|\$\w+")
_NUMBER = re.compile(r"\b0x[0-9a-fA-F]+\b|(?<![\w:])\d+(?:\.\d*)?(?:[eE][+-]?\d+)?(?:ms|[smhdwy])?\b")
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def metric_names(expr: str) -> set[str]:
    """The metric names one PromQL expression reads (`__name__` matchers included)."""
    names: set[str] = set()
    # {__name__="x"} and {__name__=~"a|b"} (a plain alternation only).
    for m in re.finditer(r'__name__\s*=~?\s*"([^"]*)"', expr):
        names |= {n for n in m.group(1).split("|") if _IDENT.fullmatch(n)}
    text = _GRAFANA_VAR.sub(" ", expr)
    text = _STRING.sub(" ", text)
    text = _MATCHERS.sub(" ", text)
    text = _RANGE.sub(" ", text)
    text = _LABEL_LIST.sub(" ", text)
    text = _NUMBER.sub(" ", text)
    for m in _IDENT.finditer(text):
        word = m.group(0)
        rest = text[m.end():].lstrip()
        if rest.startswith("("):
            continue  # a function or an aggregation
        if word.lower() in KEYWORDS:
            continue
        names.add(word)
    return names


@dataclass
class Use:
    """Where a metric name is read: alert names, recording rules, dashboard panels."""
    where: list[str] = field(default_factory=list)


def rule_expressions(path: Path = RULES) -> tuple[list[tuple[str, str]], set[str]]:
    """([(who, expr)], names recorded) of the PrometheusRule at `path`."""
    import yaml  # only here: the scrape check of a dashboard alone needs no PyYAML

    doc = yaml.safe_load(path.read_text())
    exprs, recorded = [], set()
    for group in doc["spec"]["groups"]:
        for rule in group["rules"]:
            who = f"alert {rule['alert']}" if "alert" in rule else f"record {rule['record']}"
            exprs.append((who, str(rule["expr"])))
            if "record" in rule:
                recorded.add(rule["record"])
    return exprs, recorded


def dashboard_expressions(path: Path = DASHBOARD) -> list[tuple[str, str]]:
    """[(who, expr)] of every panel target and query variable of the dashboard."""
    dash = json.loads(path.read_text())
    out = []

    def panels(items):
        for p in items or []:
            yield p
            yield from panels(p.get("panels"))

    for p in panels(dash.get("panels")):
        for t in p.get("targets") or []:
            if t.get("expr"):
                out.append((f"panel {p.get('title', p.get('id'))!r}", t["expr"]))
    for v in (dash.get("templating") or {}).get("list") or []:
        if v.get("type") != "query":
            continue
        q = v.get("query")
        q = q.get("query") if isinstance(q, dict) else q
        if not q:
            continue
        # label_values(metric{...}, label) / query_result(expr): the part that is PromQL.
        m = re.fullmatch(r"\s*(?:label_values|query_result)\((.*)\)\s*", q, re.S)
        if m:
            inner = m.group(1)
            if q.lstrip().startswith("label_values"):
                inner = inner.rsplit(",", 1)[0] if "," in inner else ""
            q = inner
        if q.strip():
            out.append((f"variable ${v.get('name')}", q))
    return out


def used(rules: Path = RULES, dashboard: Path = DASHBOARD) -> dict[str, Use]:
    """Every metric name a scrape must show, with where it is used."""
    exprs, recorded = rule_expressions(rules)
    exprs += dashboard_expressions(dashboard)
    uses: dict[str, Use] = {}
    for who, expr in exprs:
        for n in metric_names(expr):
            if n in SYNTHETIC or n in recorded:
                continue
            uses.setdefault(n, Use()).where.append(who)
    return dict(sorted(uses.items()))


def scraped_names(text: str) -> set[str]:
    """The sample names of a Prometheus text-format (or OpenMetrics) exposition."""
    names = set()
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _IDENT.match(line)
        if m:
            names.add(m.group(0))
    return names


def main(argv: list[str]) -> int:
    where = "--where" in argv
    files = [a for a in argv if a != "--where"]
    if any(a.startswith("-") and a != "-" for a in files):
        print(__doc__, file=sys.stderr)
        return 2
    uses = used()
    if not files:
        for n, u in uses.items():
            print(f"{n}\t{', '.join(sorted(set(u.where)))}" if where else n)
        return 0
    have: set[str] = set()
    for f in files:
        try:
            text = sys.stdin.read() if f == "-" else Path(f).read_text()
        except OSError as e:
            print(f"cannot read scrape {f}: {e.strerror}", file=sys.stderr)
            return 2
        have |= scraped_names(text)
    missing = [n for n in uses if n not in have]
    for n in missing:
        print(f"missing: {n} (used by {', '.join(sorted(set(uses[n].where)))})")
    print(f"metrics used: {len(uses)}, in the scrape: {len(uses) - len(missing)}, "
          f"missing: {len(missing)}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
