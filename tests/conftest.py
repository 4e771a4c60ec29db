from __future__ import annotations

import pytest

SITL_SKIP_MARK = "SITL NOT RUN"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Make skipped SITL tests impossible to miss: they are a hole in what this run proved."""
    skipped = terminalreporter.stats.get("skipped", [])
    reasons = {str(report.longrepr[2]) for report in skipped if SITL_SKIP_MARK in str(report.longrepr)}
    if reasons:
        count = sum(SITL_SKIP_MARK in str(report.longrepr) for report in skipped)
        terminalreporter.write_sep("!", f"{count} SITL TESTS DID NOT RUN", red=True, bold=True)
        for reason in sorted(reasons):
            terminalreporter.write_line(reason, red=True, bold=True)
