"""Connect/disconnect churn leaves nothing behind: 300 cycles of every kind of hang-up (clean
close, close before session.created, dropped TCP, hang-up mid-reply) against `run-pipeline`
keep RSS, file descriptors, threads and asyncio tasks flat after the first 100.
(benchmarks/churn.py runs the 1,000 cycles of the issue.)"""

from __future__ import annotations

import asyncio
import os

from churn_client import cycle, stats
from conftest import NOVA, start_server

CYCLES, PARALLEL = 300, 4


async def test_churn_leaves_rss_fds_threads_and_tasks_flat(tmp_path):
    proc, url = start_server(NOVA, env={**os.environ, "CADENCE_DATA_DIR": str(tmp_path)})
    address = url.removeprefix("http://")
    try:
        readings = []
        for done in range(0, CYCLES, PARALLEL):
            went = await asyncio.gather(*(cycle(f"ws://{address}/v1/realtime", (done + i) % 4) for i in range(PARALLEL)))
            assert all(went), f"a cycle failed at {done}"
            if done + PARALLEL in (100, CYCLES):
                for _ in range(100):
                    if (reading := stats(proc.pid, address))["sessions"] == 0:
                        break
                    await asyncio.sleep(0.2)
                readings.append(reading)
        first, last = readings
        assert last["sessions"] == 0, readings
        assert abs(last["rss_mb"] - first["rss_mb"]) <= 20, readings
        assert last["fds"] <= first["fds"] + 2 and last["threads"] <= first["threads"] + 1, readings
        assert last["tasks"] <= first["tasks"] + 1, readings
    finally:
        proc.terminate()
        proc.wait(timeout=60)
