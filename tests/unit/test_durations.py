"""The measured durations the parallel scheduler orders units by (``tests.framework.durations``)."""

from __future__ import annotations

from tests.framework.durations import expected, measure, table, units

LOG = """
============================== slowest durations ===============================
120.70s call     tests/egress/test_egress.py::test_the_real_key_never_reaches_the_guest
8.21s setup    tests/egress/test_egress.py::test_a_granted_request_arrives_with_the_real_key
100.71s call     tests/remote/test_window_host.py::test_a_window_session_on_the_assigned_host_reconnects
64.30s call     tests/remote/test_sandbox_host.py::test_x
0.01s teardown tests/unit/test_x.py::test_y
"""


def test_a_durations_report_becomes_seconds_per_unit_longest_first() -> None:
    per_module = measure(LOG)
    assert per_module["tests/egress/test_egress.py"] == 128.91
    got = units(per_module)
    assert list(got) == ["tests/remote/", "tests/egress/test_egress.py", "tests/unit/test_x.py"]  # remote is one unit
    assert got["tests/remote/"] == 165.0
    assert expected("tests/remote/", 3, got) == 165.0
    assert expected("tests/new/test_new.py", 4, got) == 4 * 3.0  # not measured yet: by its number of tests
    assert "| `egress/test_egress.py` | 129 |" in table(per_module)
