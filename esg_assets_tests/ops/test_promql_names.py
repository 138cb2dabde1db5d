"""metric_names, which the dashboard and rules tests trust: it finds every metric and nothing else."""

import pytest

from esg_assets_tests.support.promql_names import metric_names

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("expression", "names"),
    [
        ("up", {"up"}),
        ('rate(http_total{path="/a(b)", code=~"5.."}[5m] offset 1h)', {"http_total"}),
        (
            "sum by (le, job) (rate(h_bucket[5m])) / on (job) group_left (partition) other",
            {"h_bucket", "other"},
        ),
        ("histogram_quantile(0.9, x) > bool 1e3", {"x"}),
        ("time() - max without (instance) (a:recorded)", {"a:recorded"}),
        ("a and on () b or ignoring (x) c unless d", {"a", "b", "c", "d"}),
        ("vector(0.05) * 26 * 3600", set()),
        ("max_over_time(g[1d:5m])", {"g"}),
        ('x{job="esg"} * on(job, partition) group_right() y', {"x", "y"}),
    ],
)
def test_names_of(expression, names):
    assert metric_names(expression) == names


def test_a_selector_by_name_label_is_refused_not_missed():
    with pytest.raises(ValueError, match="__name__"):
        metric_names('{__name__=~"esg_.*"}')
