"""The suite's order, which `make test` hands its workers in: whole modules, those holding e2e tests first."""

import pytest

pytestmark = pytest.mark.unit

LONGEST_FIRST = ("e2e", "integration", "unit")


def _module(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def _rank(item: pytest.Item) -> int:
    return min(LONGEST_FIRST.index(mark.name) for mark in item.iter_markers() if mark.name in LONGEST_FIRST)


def test_each_module_comes_whole_and_modules_with_e2e_then_integration_tests_come_first(request):
    items = request.session.items  # this session's tests, in the order they run (all of them in `make test`)
    modules: list[str] = []
    for item in items:
        if not modules or modules[-1] != _module(item):
            modules.append(_module(item))
    assert len(modules) == len(set(modules)), "a module's tests are split apart"
    rank = {module: min(_rank(item) for item in items if _module(item) == module) for module in modules}
    ranks = [rank[module] for module in modules]
    assert ranks == sorted(ranks), [f"{LONGEST_FIRST[rank[module]]}: {module}" for module in modules]
