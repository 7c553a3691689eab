"""Suite-wide rules: ``@pytest.mark.requires_tool(name)`` and the header saying what CI requires.

A test marked ``requires_tool`` whose tool is missing is skipped on a developer's machine (the
skip summary names the test and the tool) and fails under ``CI=true``, through
``helpers.need_tool`` (docs/testing.md).
"""

from __future__ import annotations

import pytest
from helpers import CI, PROJECT_TOOLS, find_tool, need_tool


def pytest_report_header(config: pytest.Config) -> str:
    absent = [name for name in PROJECT_TOOLS if find_tool(name) is None]
    mode = "CI=true: a missing project tool fails its tests" if CI else "a missing project tool skips its tests"
    return f"mailsim: {mode}; missing here: {', '.join(absent) or 'none'}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Outside CI, turn a missing tool into a skip mark now, so the summary points at the test."""
    if CI:
        return
    for item in items:
        for mark in item.iter_markers("requires_tool"):
            (name,) = mark.args
            if find_tool(name) is None:
                _probe, source, _required = PROJECT_TOOLS[name]
                item.add_marker(pytest.mark.skip(reason=f"{name} is not available (installed from the {source})"))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if not CI:
        return  # marked at collection
    for mark in item.iter_markers("requires_tool"):
        (name,) = mark.args
        need_tool(name)  # under CI=true: fails here, before the test's fixtures run
