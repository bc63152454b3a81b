"""Database login and query latency through the db probe, per engine, on this machine.

    .venv/bin/python bench/db_connect.py [--runs 20] [--samples 20]      (as root: the servers run as their own
                                                                         accounts, started with setpriv)

What it does:

1. Starts a throwaway PostgreSQL cluster and a MariaDB server on 127.0.0.1 (free ports; ``tests/dbfix.py``: data
   under /tmp, stopped by PID and removed at the end, also on an error or Ctrl-C), creates a login ``bench`` with a
   table, and an SQLite file. FreeTDS is pointed at a closed port (there is no SQL Server here).
2. Runs the ``db`` probe (in this process, as a scan does) ``--runs`` times per engine, each run a fresh ODBC
   login followed by one version query and ``--samples`` round trips of ``SELECT 1``. The first run of each
   engine is reported apart ("cold"): it loads the driver's shared library and its dependencies.
3. Prints per engine: cold connect_ms; the median and p95 of connect_ms over the warm runs; the median of the
   runs' query_ms (each itself the median of its samples); the median of the whole check (elapsed_ms, all
   stages). For FreeTDS only the time to the answer (the probe stops at the tcp stage: port-refused).
4. One more row: PostgreSQL through the ``from:`` tunnel machinery (a 127.0.0.1 listener pumping to a
   transport's connection), with a loopback transport that pretends to be remote — the cost of the pump itself,
   without SSH.

Loopback only; no name is resolved.
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from envprobe.probes.base import ProbeContext  # noqa: E402
from envprobe.probes.db import DbParams, DbProbe  # noqa: E402
from envprobe.transport.local import LocalTransport  # noqa: E402
from tests.dbfix import MariaServer, PgCluster, free_port  # noqa: E402

PASSWORD = "Bench-pw-123"


class LoopbackAsRemote(LocalTransport):
    """This machine, posing as a remote vantage host: the db probe then logs in through its tunnel."""

    is_local = False
    name = "loopback-tunnel"


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def run(params: dict[str, Any], runs: int, transport: Any = None) -> dict[str, Any]:
    facts = []
    for _ in range(runs):
        f = DbProbe().collect(ProbeContext(transport or LocalTransport(), "local", 30), DbParams(**params))
        facts.append(f)
    first, rest = facts[0], facts[1:] or facts
    bad = [f for f in facts if f.cause not in (None, "port-refused")]
    if bad:
        raise SystemExit(f"unexpected result: stage {bad[0].stage}, cause {bad[0].cause}: {bad[0].error}")
    conn = [f.connect_ms for f in rest if f.connect_ms is not None]
    query = [f.query_ms for f in rest if f.query_ms is not None]
    return {
        "product": f"{first.product or '-'} {first.version or ''}".strip(),
        "cause": first.cause,
        "cold": first.connect_ms,
        "connect_p50": statistics.median(conn) if conn else None,
        "connect_p95": p95(conn) if conn else None,
        "query_p50": statistics.median(query) if query else None,
        "elapsed_p50": statistics.median(f.elapsed_ms for f in rest),
    }


def fmt(v: float | None) -> str:
    return "—" if v is None else f"{v:.2f}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--samples", type=int, default=20)
    args = ap.parse_args()
    rows: list[tuple[str, str, dict[str, Any]]] = []
    with contextlib.ExitStack() as stack:
        pg = PgCluster()
        stack.callback(pg.close)
        pg.start()
        pg.sql(f"CREATE ROLE bench LOGIN PASSWORD '{PASSWORD}'")
        pg.sql("CREATE DATABASE bench OWNER bench")
        ma = MariaServer()
        stack.callback(ma.close)
        ma.start()
        ma.sql(f"CREATE USER 'bench'@'%' IDENTIFIED BY '{PASSWORD}'; CREATE DATABASE bench; "
               "GRANT ALL ON bench.* TO 'bench'@'%'")
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="envprobe-bench-")))
        lite = tmp / "bench.db"
        with contextlib.closing(sqlite3.connect(lite)) as db:
            db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
        common = {"samples": args.samples, "timeout": 5}
        pg_params = dict(driver="PostgreSQL Unicode", server="127.0.0.1", port=pg.port, database="bench",
                         user="bench", password=PASSWORD, **common)
        cases = [
            ("PostgreSQL", "PostgreSQL Unicode (psqlODBC)", pg_params, None),
            ("MariaDB", "MariaDB Unicode (Connector/ODBC)",
             dict(driver="MariaDB Unicode", server="127.0.0.1", port=ma.port, database="bench", user="bench",
                  password=PASSWORD, **common), None),
            ("SQLite", "SQLite3 (sqliteodbc)", dict(driver="SQLite3", database=str(lite), **common), None),
            ("FreeTDS, closed port", "FreeTDS", dict(driver="FreeTDS", server="127.0.0.1", port=free_port(),
                                                     user="sa", password=PASSWORD, **common), None),
            ("PostgreSQL via tunnel pump", "PostgreSQL Unicode", pg_params, LoopbackAsRemote()),
        ]
        t0 = time.perf_counter()
        for label, driver, params, transport in cases:
            rows.append((label, driver, run(params, args.runs, transport)))
        total = time.perf_counter() - t0
    print(f"db probe on this machine, 127.0.0.1; {args.runs} checks per engine (first = cold), "
          f"{args.samples} SELECT 1 samples per check; times in ms\n")
    print("| engine | driver | server | cold connect | connect p50 | connect p95 | query p50 | whole check p50 |")
    print("|---|---|---|---|---|---|---|---|")
    for label, driver, r in rows:
        server = r["product"] if r["cause"] is None else r["cause"]
        print(f"| {label} | {driver} | {server} | {fmt(r['cold'])} | {fmt(r['connect_p50'])} | "
              f"{fmt(r['connect_p95'])} | {fmt(r['query_p50'])} | {fmt(r['elapsed_p50'])} |")
    print(f"\n({total:.1f} s for all runs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
