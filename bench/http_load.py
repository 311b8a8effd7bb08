"""HTTP load for ``bench/sec_endpoint.py``: CLIENTS threads, each with its own
keep-alive connection, POST the endpoint back to back for SECONDS (after WARMUP
seconds not counted). Prints one line of JSON: requests, seconds, latencies (us),
and every status that was not a successful enqueue.

    python bench/http_load.py HOST PORT PATH CLIENTS SECONDS WARMUP
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time


def main() -> int:
    host, port, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    clients, seconds, warmup = int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
    start = time.perf_counter() + 0.05
    t_begin, t_end = start + warmup, start + warmup + seconds
    lat: list[list[int]] = [[] for _ in range(clients)]
    bad: list[str] = []
    counted = [0] * clients

    def client(i: int) -> None:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        clock = time.perf_counter
        while clock() < start:
            time.sleep(0.001)
        while True:
            t0 = clock()
            if t0 >= t_end:
                break
            try:
                conn.request("POST", path, body=b"", headers={"Content-Length": "0"})
                resp = conn.getresponse()
                body = resp.read()
            except (OSError, http.client.HTTPException) as e:
                bad.append(f"{type(e).__name__}: {e}")
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=60)
                continue
            t1 = clock()
            if resp.status != 200 or b'"Success":true' not in body.replace(b" ", b""):
                bad.append(f"{resp.status} {body[:200]!r}")
            if t0 >= t_begin:
                lat[i].append(int((t1 - t0) * 1e6))
            if t0 < t_end:
                counted[i] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    samples = [x for xs in lat for x in xs]
    out = {"requests": len(samples), "seconds": seconds, "latencies_us": samples}
    out.update(sent=sum(counted), bad=bad[:20], bad_count=len(bad))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
