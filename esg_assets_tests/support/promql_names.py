"""The metric names a PromQL expression reads, for tests that hold the shipped rules and dashboard to the
metrics the job pushes."""

import re

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^}]*\}")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_RANGE = re.compile(r"\[[^\]]*\]")
_GRAFANA_VARIABLE = re.compile(r"\$\{?\w+\}?")
# a name not glued to a number (5m, 1e3) or another name; a following "(" makes it a function
_NAME = re.compile(r"(?<![\w:.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?")
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan"}


def metric_names(expression: str) -> set[str]:
    """Every metric the expression selects by name; refuses selectors by ``__name__`` it cannot read."""
    if "__name__" in expression:
        raise ValueError(f"selects metrics by __name__, which this check cannot follow: {expression}")
    text = _STRING.sub('""', expression)
    for pattern in (_MATCHERS, _LABEL_LIST, _RANGE, _GRAFANA_VARIABLE):
        text = pattern.sub(" ", text)
    return {
        match.group(1)
        for match in _NAME.finditer(text)
        if match.group(2) is None and match.group(1).lower() not in _KEYWORDS
    }
