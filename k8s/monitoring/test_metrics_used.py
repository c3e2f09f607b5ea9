#!/usr/bin/env python3
"""Unit tests of metrics_used.py: its PromQL reading, and its verdict on a fixture scrape.

    python3 -m unittest k8s/monitoring/test_metrics_used.py     (k8s/check.sh runs it)
"""

from __future__ import annotations

import contextlib
import io
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import metrics_used  # noqa: E402
from metrics_used import metric_names, scraped_names  # noqa: E402

SCRAPE = HERE / "testdata" / "scrape.prom"

# The names issue 13 fixes, as a scrape shows them.
ISSUE_METRICS = {
    "grpc_server_handled_total", "grpc_server_handling_seconds_bucket",
    "gateway_rate_limited_total", "outbox_pending", "outbox_oldest_age_seconds",
    "outbox_published_total", "outbox_publish_errors_total", "consumer_lag",
    "consumer_ack_pending", "consumer_handled_total", "consumer_handle_seconds_bucket",
    "deadletter_messages", "inbox_rows", "breaker_state", "breaker_transitions_total",
    "breaker_rejected_total", "gift_calls_shed_total", "db_write_batch_size_sum",
    "db_write_batch_size_count", "db_commit_seconds_bucket", "db_pool_in_use", "readiness",
    "build_info",
}


def run(*args: str, stdin: str | None = None) -> tuple[int, str]:
    out = io.StringIO()
    old_stdin = sys.stdin
    try:
        if stdin is not None:
            sys.stdin = io.StringIO(stdin)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = metrics_used.main(list(args))
    finally:
        sys.stdin = old_stdin
    return code, out.getvalue()


class PromqlNames(unittest.TestCase):
    def test_a_selector_with_matchers_and_a_range_is_its_metric(self):
        self.assertEqual(metric_names('rate(consumer_handled_total{job="x", outcome!~"retry|ok"}[5m])'),
                         {"consumer_handled_total"})

    def test_label_lists_of_aggregations_and_matching_are_not_metrics(self):
        expr = ('sum by (namespace, role) (rate(a_total[5m])) / on (namespace) group_left(role) '
                'sum without (pod, instance) (b) or ignoring(le) c unless d')
        self.assertEqual(metric_names(expr), {"a_total", "b", "c", "d"})

    def test_aggregations_written_after_their_argument(self):
        self.assertEqual(metric_names("sum(rate(x_total[1m])) by (le)"), {"x_total"})

    def test_functions_keywords_numbers_and_durations_are_not_metrics(self):
        expr = ('histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m] offset 1h))) > bool 1e3 '
                'and deriv(g[5m:30s]) > -0.5 or vector(1) == nan or time() > inf')
        self.assertEqual(metric_names(expr), {"h_bucket", "g"})

    def test_strings_may_hold_anything(self):
        expr = ('label_replace(up_ness, "dst", "$1 not_a_metric", "src", "(.*)") '
                'and max(readiness{a="b c"})')
        self.assertEqual(metric_names(expr), {"up_ness", "readiness"})

    def test_grafana_variables_are_not_metrics(self):
        expr = 'sum(rate(x_total{namespace="$namespace", role=~"${role}"}[$__rate_interval]))'
        self.assertEqual(metric_names(expr), {"x_total"})

    def test_recorded_names_with_colons_and_name_matchers(self):
        self.assertEqual(metric_names('ns:errors:ratio_rate5m > (14.4 * 0.001)'),
                         {"ns:errors:ratio_rate5m"})
        self.assertEqual(metric_names('{__name__=~"a_total|b", job="x"}'), {"a_total", "b"})

    def test_case_insensitive_regexes_in_matchers_are_not_read(self):
        self.assertEqual(metric_names('c{grpc_code=~"(?i)unknown|deadline_?exceeded"}'), {"c"})


class UsedByRulesAndDashboard(unittest.TestCase):
    def test_every_metric_of_the_issue_is_read_and_nothing_else(self):
        self.assertEqual(set(metrics_used.used()), ISSUE_METRICS)

    def test_recorded_series_and_prometheus_own_series_are_not_expected_in_a_scrape(self):
        used = metrics_used.used()
        self.assertFalse([n for n in used if ":" in n])
        self.assertNotIn("up", used)
        # ...but a recording rule's inputs are.
        self.assertIn("record namespace_role:grpc_server_errors:ratio_rate5m",
                      used["grpc_server_handled_total"].where)

    def test_each_name_says_who_reads_it(self):
        used = metrics_used.used()
        self.assertIn("alert ConsumerLagGrowing", used["consumer_lag"].where)
        self.assertIn("panel 'Lag per consumer (events not yet delivered)'",
                      used["consumer_lag"].where)


class ScrapeCheck(unittest.TestCase):
    def test_sample_names_of_a_scrape(self):
        text = ('# HELP a_total x\n# TYPE a_total counter\na_total{x="1"} 3 1700000000\n'
                'h_bucket{le="+Inf"} 1 # {trace_id="abc"} 0.5\nb 1\n\n# EOF\n')
        self.assertEqual(scraped_names(text), {"a_total", "h_bucket", "b"})

    def test_the_fixture_scrape_has_everything(self):
        code, out = run(str(SCRAPE))
        self.assertEqual(code, 0, out)
        self.assertIn("missing: 0", out)

    def test_a_scrape_without_some_metrics_fails_naming_them(self):
        lines = [l for l in SCRAPE.read_text().splitlines()
                 if not l.startswith(("consumer_lag", "breaker_state"))]
        with tempfile.NamedTemporaryFile("w", suffix=".prom") as f:
            f.write("\n".join(lines))
            f.flush()
            code, out = run(f.name)
        self.assertEqual(code, 1, out)
        missing = sorted(l.split()[1] for l in out.splitlines() if l.startswith("missing: ")
                         and not l.startswith("missing: 0"))
        self.assertEqual(missing, ["breaker_state", "consumer_lag"])
        self.assertIn("missing: consumer_lag (used by alert ConsumerLagGrowing", out)

    def test_several_scrapes_count_together(self):
        lines = SCRAPE.read_text().splitlines()
        half = len(lines) // 2
        with tempfile.TemporaryDirectory() as d:
            a, b = Path(d, "a.prom"), Path(d, "b.prom")
            a.write_text("\n".join(lines[:half]))
            b.write_text("\n".join(lines[half:]))
            self.assertEqual(run(str(a))[0], 1)
            self.assertEqual(run(str(a), str(b))[0], 0)

    def test_a_scrape_from_stdin(self):
        self.assertEqual(run("-", stdin=SCRAPE.read_text())[0], 0)
        self.assertEqual(run("-", stdin="readiness 1\n")[0], 1)

    def test_without_a_scrape_it_lists_the_names(self):
        code, out = run()
        self.assertEqual(code, 0)
        self.assertEqual(set(out.split()), ISSUE_METRICS)

    def test_an_unreadable_scrape_is_an_error_not_a_verdict(self):
        code, out = run("/nonexistent/scrape.prom")
        self.assertEqual(code, 2)
        self.assertIn("cannot read scrape", out)


if __name__ == "__main__":
    unittest.main()
