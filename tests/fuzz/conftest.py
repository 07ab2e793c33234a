def pytest_terminal_summary(terminalreporter):
    from tests.fuzz.test_fuzz import TOTALS

    if TOTALS:
        by_status = ", ".join(f"{status}: {n}" for status, n in sorted(TOTALS.items()))
        terminalreporter.write_line(f"fuzz: {sum(TOTALS.values())} requests; by status {by_status}")
