#!/usr/bin/env python3
"""Unit tests of check.py's own verdicts: it must report what it claims to catch.

    python3 -m unittest k8s/monitoring/test_check.py     (k8s/check.sh runs it)
"""

from __future__ import annotations

import copy
import json
import sys
import tempfile
import unittest
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import check  # noqa: E402


def write(tmp: str, name: str, text: str) -> Path:
    p = Path(tmp, name)
    p.write_text(text)
    return p


class Coverage(unittest.TestCase):
    def problems_keeping(self, keep) -> list[str]:
        doc = yaml.safe_load(check.TESTS.read_text())
        for t in doc["tests"]:
            t["alert_rule_test"] = [c for c in t.get("alert_rule_test") or [] if keep(c)]
        with tempfile.TemporaryDirectory() as tmp:
            return check.coverage_problems(tests=write(tmp, "t.yaml", yaml.safe_dump(doc)))

    def test_the_shipped_tests_cover_every_alert(self):
        self.assertEqual(check.coverage_problems(), [])

    def test_an_alert_without_a_firing_case_is_reported(self):
        problems = self.problems_keeping(lambda c: not (c["alertname"] == "OutboxOldestAgeHigh"
                                                     and c.get("exp_alerts")))
        # ...and so none pending either (quiet before it fires).
        self.assertEqual(problems, ["OutboxOldestAgeHigh has no firing test case",
                                    "OutboxOldestAgeHigh has no pending test case"])

    def test_a_for_alert_tested_quiet_only_after_it_fired_lacks_a_pending_case(self):
        # BreakerOpen's only quiet case (6m) comes before its firing one (8m): drop it.
        problems = self.problems_keeping(lambda c: not (c["alertname"] == "BreakerOpen"
                                                     and not c.get("exp_alerts")))
        self.assertEqual(problems, ["BreakerOpen has no quiet test case",
                                    "BreakerOpen has no pending test case"])

    def test_a_test_of_an_alert_that_does_not_exist_is_reported(self):
        doc = yaml.safe_load(check.TESTS.read_text())
        doc["tests"][0]["alert_rule_test"].append(
            {"eval_time": "1m", "alertname": "NoSuchAlert", "exp_alerts": []})
        with tempfile.TemporaryDirectory() as tmp:
            problems = check.coverage_problems(tests=write(tmp, "t.yaml", yaml.safe_dump(doc)))
        self.assertEqual(len(problems), 1)
        self.assertIn("names unknown alert NoSuchAlert", problems[0])


class Dashboard(unittest.TestCase):
    def problems_of(self, mutate) -> list[str]:
        dash = json.loads(check.DASHBOARD.read_text())
        mutate(dash)
        with tempfile.TemporaryDirectory() as tmp:
            return check.dashboard_problems(write(tmp, "d.json", json.dumps(dash)))

    def test_the_shipped_dashboard_is_well_formed(self):
        self.assertEqual(check.dashboard_problems(), [])

    def test_a_dashboard_that_does_not_parse(self):
        with tempfile.TemporaryDirectory() as tmp:
            problems = check.dashboard_problems(write(tmp, "d.json", '{"panels": ['))
        self.assertEqual(len(problems), 1)
        self.assertIn("does not parse", problems[0])

    def test_overlapping_panels_are_reported(self):
        def overlap(d):
            d["panels"][2]["gridPos"] = copy.deepcopy(d["panels"][1]["gridPos"])
        self.assertTrue(any("overlap" in p for p in self.problems_of(overlap)))

    def test_an_undefined_variable_is_reported(self):
        def typo(d):
            d["panels"][1]["targets"][0]["expr"] += ' or x{namespace="$namspace"}'
        self.assertIn("uses $namspace, which is not a variable of the dashboard",
                      self.problems_of(typo))

    def test_a_panel_bound_to_a_fixed_datasource_is_reported(self):
        def fixed(d):
            d["panels"][1]["datasource"] = {"type": "prometheus", "uid": "P1809F7CD0C75ACF3"}
        self.assertTrue(any("datasource" in p for p in self.problems_of(fixed)))

    def test_duplicate_ids_and_empty_queries_are_reported(self):
        def broken(d):
            d["panels"][2]["id"] = d["panels"][1]["id"]
            d["panels"][2]["targets"][0]["expr"] = " "
        problems = self.problems_of(broken)
        self.assertTrue(any("not unique" in p for p in problems), problems)
        self.assertTrue(any("has no expr" in p for p in problems), problems)


class GrafanaQueries(unittest.TestCase):
    def test_grafana_variables_become_valid_promql(self):
        self.assertEqual(
            check.grafana_to_promql('rate(x{ns="$namespace", r=~"${role}"}[$__rate_interval])'),
            'rate(x{ns="x", r=~"x"}[5m])')


if __name__ == "__main__":
    unittest.main()
