"""Benchmarks that print numbers (not tests): ``python -m bench.all``, or one of them, e.g. ``python -m bench.latency``.

Each starts its own emulator, Slack receiver and KCL daemon on free ports with a private stream and application
name (``cali-bench-<id>``), so it never collides with ``make run`` or the tests, and stops all of it on the way out.
"""
