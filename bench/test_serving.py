"""bench.serving's pure helpers: wrk's report line, CPU shares from /proc samples, py-spy stack summaries.

No database, no servers, no load: these run in `make test`.
"""

import json

import pytest

from bench.loadgen import (
    CLOCK_TICKS,
    CpuSample,
    WrkRun,
    cpu_use,
    median_run,
    parse_wrk_output,
    summarize_stacks,
)
from bench.serving import sizing

WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:8000
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
Requests/sec:    273.10
WRK_JSON {"duration_us": 10012345, "requests": 2734, "bytes": 123456, "statuses": {"202": 2730, "500": 4}, \
"errors": {"connect": 0, "read": 1, "write": 0, "status": 4, "timeout": 2}, "latency_us": {"min": 3100, \
"mean": 58123.4, "max": 231000, "percentiles": {"50": 55000, "90": 101000, "95": 134000, "99": 177000, \
"99.9": 203000}}}
"""


def test_wrk_report_line_is_parsed_into_milliseconds() -> None:
    figures = parse_wrk_output(WRK_OUTPUT)

    assert figures["requests"] == 2734
    assert figures["statuses"] == {"202": 2730, "500": 4}
    assert figures["latency_ms"] == {
        "p50": 55.0,
        "p90": 101.0,
        "p95": 134.0,
        "p99": 177.0,
        "p99.9": 203.0,
        "mean": pytest.approx(58.1234),
        "max": 231.0,
    }
    # Non-2xx answers are counted in `statuses`; socket errors are the rest.
    assert figures["socket_errors"] == 3


def test_wrk_output_without_report_line_is_an_error() -> None:
    with pytest.raises(ValueError, match="WRK_JSON"):
        parse_wrk_output("unable to connect to 127.0.0.1:8000 Connection refused\n")


def _run(rate_requests: int, p95: float, statuses: dict[str, int]) -> WrkRun:
    latency = {"p50": p95 / 2, "p95": p95, "p99": p95 * 1.5, "max": p95 * 2}
    return WrkRun(rate_requests, 10.0, statuses, 0, latency, {"busy_pct": 90.0}, [0.6, 0.5], [9, 7])


def test_median_run_takes_medians_and_sums_failures() -> None:
    runs = [
        _run(2000, 100.0, {"200": 2000}),
        _run(3000, 80.0, {"200": 2990, "503": 10}),
        _run(2500, 90.0, {"200": 2500}),
    ]

    summary = median_run(runs)

    assert summary["rate"] == 250.0
    assert summary["rates"] == [200.0, 300.0, 250.0]
    assert summary["latency_ms"]["p95"] == 90.0
    assert summary["non_2xx"] == 10
    json.dumps(summary)  # saved as JSON


def test_cpu_use_splits_the_machine_by_process() -> None:
    server, worker, postgres, wrk, other = 100, 101, 200, 300, 400
    ticks = CLOCK_TICKS
    before = CpuSample(
        at=0.0,
        busy=0,
        total=0,
        processes={
            server: ("gunicorn", 1, 0),
            worker: ("gunicorn", server, 0),
            postgres: ("postgres", 1, 0),
            wrk: ("wrk", 1, 0),
            other: ("bash", 1, 0),
        },
    )
    # Two seconds on two cores: 4 core-seconds, 3 of them busy.
    after = CpuSample(
        at=2.0,
        busy=3 * ticks,
        total=4 * ticks,
        processes={
            server: ("gunicorn", 1, 0),
            worker: ("gunicorn", server, 2 * ticks),
            postgres: ("postgres", 1, ticks // 2),
            wrk: ("wrk", 1, 0),
            other: ("bash", 1, ticks // 2),
        },
    )

    figures, workers = cpu_use(before, after, server)

    assert figures["busy_pct"] == 75.0
    assert figures["server_cores"] == 1.0
    assert figures["postgres_cores"] == 0.25
    assert workers == [1.0]


def test_stack_summary_reports_self_time_by_package_and_frames_on_the_stack() -> None:
    collapsed = "\n".join(
        [
            "run (threading.py:1);post (tickets/api/inbound.py:60);execute (django/db/backends/utils.py:9) 6",
            "run (threading.py:1);post (tickets/api/inbound.py:61);dumps (json/__init__.py:231) 2",
            "run (threading.py:1);authenticate (rest_framework/authentication.py:190) 2",
        ]
    )

    summary = summarize_stacks(collapsed)

    assert summary["samples"] == 10
    assert summary["self_by_package"] == {"django/db": 60.0, "json": 20.0, "rest_framework": 20.0}
    # Line numbers are dropped, so one function is one entry; frames on every stack are left out.
    assert summary["inclusive"]["post (tickets/api/inbound.py)"] == 80.0
    assert "run (threading.py)" not in summary["inclusive"]


def test_sizing_reads_workers_by_threads() -> None:
    assert sizing("3x8") == (3, 8)
