"""Connect/disconnect churn against one `run-pipeline` server: every kind of hang-up.

Cycles, 4 at a time, in turn: a clean close after `session.created`; a close before it; a
dropped TCP connection (no close frame); a hang-up in the middle of a reply. Prints the
server's RSS, open file descriptors, threads and asyncio tasks after the first 100 cycles
and every `--every` after, and the drift from the first reading.

    python benchmarks/churn.py --cycles 1000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from churn_client import cycle, stats  # noqa: E402
from realtime_sessions import config_file, start_server  # noqa: E402


async def main(cycles: int, every: int, parallel: int) -> None:
    proc, address = start_server(config_file(instant=False))
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # keep its pipe drained
    url = f"ws://{address}/v1/realtime"
    readings = []
    try:
        done = 0
        while done < cycles:
            await asyncio.gather(*(cycle(url, (done + i) % 4) for i in range(parallel)))
            done += parallel
            if done == 100 or (done > 100 and done % every == 0) or done >= cycles:
                for _ in range(50):  # let the last sessions end
                    if stats(proc.pid, address)["sessions"] == 0:
                        break
                    await asyncio.sleep(0.2)
                reading = {"cycles": done, **stats(proc.pid, address)}
                readings.append(reading)
                print(json.dumps(reading), flush=True)
        first, last = readings[0], readings[-1]
        print(f"after {last['cycles']} cycles vs after {first['cycles']}: RSS {last['rss_mb'] - first['rss_mb']:+.1f} MB,"
              f" fds {last['fds'] - first['fds']:+d}, threads {last['threads'] - first['threads']:+d},"
              f" asyncio tasks {last['tasks'] - first['tasks']:+d}")
    finally:
        proc.terminate()
        proc.wait(timeout=60)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--parallel", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(main(args.cycles, args.every, args.parallel))
