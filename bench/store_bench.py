"""Call store benchmark: fill a store with N realistic calls, then time the replay pages'
queries (list, filters, search, one call with its prosody) directly and over HTTP.

Calls: 3-10 minutes, two speakers taking turns at about 150 words per minute, prosody
once a second per speaker, a few cues (real cue ids), some with feedback, some with coach
notes and a QA score, 40 agents, start times spread over a year. Calls are inserted
through ``Store.add_calls`` (the store's own path: event dicts in, redaction included) in
batches. No audio: what is timed does not read it.

Usage::

    python bench/store_bench.py [--n 10000] [--url URL | --pg] [--requests 60] [--json OUT]

Without ``--url`` the store is a SQLite file in bench/out/ (reused when it already holds N
calls; ``--fresh`` to rebuild). ``--pg`` starts a throwaway PostgreSQL server
(tests/pgserver.py) for the run. Target: list and call page p95 <= 200 ms on 10k calls.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from coach.store import NewCall, open_store  # noqa: E402

AGENTS = [
    "Amara Okafor", "Ben Carter", "Chloe Dubois", "Diego Alvarez", "Elif Yilmaz",
    "Farah Haddad", "Grace Kim", "Hiro Tanaka", "Isla MacLeod", "Jonas Weber",
    "Kavya Iyer", "Liam O'Brien", "Maya Cohen", "Nikolai Petrov", "Olivia Brown",
    "Priya Nair", "Quinn Murphy", "Rosa Martinez", "Samir Khan", "Tara Singh",
    "Uma Patel", "Victor Nguyen", "Wen Li", "Xavier Dupont", "Yara Haddad",
    "Zoe Fischer", "Aaron Lewis", "Bianca Rossi", "Caleb Wright", "Dana Whitfield",
    "Emeka Obi", "Freya Larsen", "Gabriel Silva", "Hana Sato", "Ivan Horvat",
    "Julia Novak", "Kofi Mensah", "Lena Schmidt", "Mateo Garcia", "Nadia Ahmed",
]
AGENT_LINES = [
    "thank you for calling how can i help you today",
    "i am so sorry about that let me look into it right away",
    "i understand how frustrating this must be for you",
    "can you confirm the account number for me please",
    "i can see the order here it was shipped on monday",
    "i will issue a refund to your card today",
    "unfortunately that is our policy but i can offer a voucher",
    "let me check with the warehouse and call you back tomorrow",
    "sorry for the inconvenience",
    "i have updated the delivery address on the account",
    "the replacement will arrive within three business days",
    "is there anything else i can help you with",
    "i will send you a confirmation email in the next hour",
    "that was our mistake and i will fix it now",
    "just a moment while i pull up your details",
    "i have escalated this to the billing team",
]
CUSTOMER_LINES = [
    "hi i am calling about my order it never arrived",
    "this is the third time i have called about this",
    "i was charged twice for the same subscription",
    "the package arrived damaged and the box was crushed",
    "can you tell me when the technician will come",
    "my card number is 4111 1111 1111 1111",
    "you can reach me at 555 123 4567",
    "my email is john dot smith at gmail dot com",
    "i want to cancel my contract",
    "nobody told me about the cancellation fee",
    "okay thank you that helps a lot",
    "i have been waiting on hold for forty minutes",
    "the app keeps logging me out",
    "can i get a refund instead of a voucher",
    "fine but i expect a call back tomorrow",
    "the invoice shows the wrong amount",
]
QUERIES = ["refund", "voucher", "warehouse", "cancellation fee", "charged twice",
           "technician", "escalated", "damaged", "sorry", "subscription", "invoice",
           "wrong amount", "policy", "delivery address", "logging me out"]


def make_cues() -> list[tuple[str, str, str]]:
    from coach.playbook import load_playbook

    return [(c.id, c.severity, c.title) for c in load_playbook().cues.values()]


def make_call(rng: random.Random, i: int, cues: list[tuple[str, str, str]],
              t_end: datetime) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One call's metadata and event stream."""
    duration = rng.uniform(180, 600)
    started = t_end - timedelta(days=rng.uniform(0, 365))
    started = started.replace(hour=rng.randint(8, 18), minute=rng.randint(0, 59))
    ev: list[dict[str, Any]] = [{"type": "call", "state": "start", "t": 0.0,
                                 "source": "live", "channels": ["agent", "customer"]}]
    t = 0.5
    speaker = "agent"
    words_at: dict[str, list[tuple[float, float, str]]] = {"agent": [], "customer": []}
    while t < duration - 5:
        lines = AGENT_LINES if speaker == "agent" else CUSTOMER_LINES
        n_lines = rng.randint(1, 3)
        for _ in range(n_lines):
            for w in rng.choice(lines).split():
                d = 60 / 150 * rng.uniform(0.7, 1.3)  # about 150 words per minute
                ev.append({"type": "word", "speaker": speaker, "text": w, "start": round(t, 3),
                           "end": round(t + d * 0.85, 3), "final": True,
                           "probability": round(rng.uniform(0.6, 1.0), 3)})
                words_at[speaker].append((t, t + d * 0.85, w))
                t += d
            t += rng.uniform(0.1, 0.6)
        t += rng.uniform(0.3, 1.5)
        speaker = "customer" if speaker == "agent" else "agent"
    base = {"agent": rng.uniform(100, 220), "customer": rng.uniform(100, 220)}
    for s in range(1, int(duration) + 1):
        for sp in ("agent", "customer"):
            voiced = rng.random() < 0.45
            ev.append({"type": "prosody", "speaker": sp, "t": float(s),
                       "f0_hz": round(base[sp] * rng.uniform(0.85, 1.15), 1) if voiced else None,
                       "loudness_db": round(rng.uniform(-30, -12), 1) if voiced else None,
                       "wpm": round(rng.uniform(110, 190), 1) if s > 10 else None,
                       "speaking": voiced})
    for k in range(rng.choice([0, 1, 2, 2, 3, 3, 4, 5, 6])):
        cid, sev, title = rng.choice(cues)
        ws = words_at["agent"]
        j = rng.randrange(max(1, len(ws) - 3))
        ev_words = [{"text": w, "start": round(a, 3), "end": round(b, 3)}
                    for a, b, w in ws[j:j + 3]]
        ct = round(ev_words[-1]["end"] if ev_words else rng.uniform(0, duration), 3)
        ev.append({"type": "cue", "id": cid, "t": ct, "speaker": "agent", "severity": sev,
                   "title": title, "advice": "Say what you will do next.",
                   "evidence": {"words": ev_words}})
        if rng.random() < 0.1:
            ev.append({"type": "dismiss" if k % 2 else "flag", "cue_id": cid, "t": ct})
    ev.sort(key=lambda e: e.get("start", e.get("t", 0.0)))
    ev.append({"type": "call", "state": "end", "t": round(duration, 3),
               "duration": round(duration, 3)})
    meta = {"agent": AGENTS[rng.randrange(len(AGENTS))], "started_at": started,
            "model": "tiny.en", "source": "live"}
    if rng.random() < 0.3:
        meta["score"] = round(rng.uniform(30, 100), 1)
    return meta, ev


def fill(store, n: int, *, batch: int, seed: int) -> dict[str, float]:
    """Insert ``n`` calls in batches; returns timings."""
    rng = random.Random(seed)
    cues = make_cues()
    t_end = datetime(2025, 6, 30, tzinfo=UTC)
    t0 = time.perf_counter()
    gen_s = 0.0
    words = rows = 0
    ids: list[str] = []
    for start in range(0, n, batch):
        g = time.perf_counter()
        items = []
        for i in range(start, min(n, start + batch)):
            meta, ev = make_call(rng, i, cues, t_end)
            words += sum(1 for e in ev if e["type"] == "word")
            rows += len(ev)
            items.append(NewCall(meta, ev))
        gen_s += time.perf_counter() - g
        ids += store.add_calls(items)
        done = start + len(items)
        if done % (batch * 20) == 0 or done == n:
            el = time.perf_counter() - t0
            print(f"  {done}/{n} calls, {el:.0f} s", file=sys.stderr, flush=True)
    for cid in rng.sample(ids, max(1, n // 20)):  # coach notes on 5 % of calls
        for _ in range(rng.randint(1, 3)):
            store.add_note(cid, rng.uniform(0, 180), "Listen to how the apology lands here.",
                           author="coach")
    total = time.perf_counter() - t0
    return {"calls": n, "words": words, "event_rows": rows, "fill_s": round(total, 1),
            "generate_s": round(gen_s, 1), "insert_s": round(total - gen_s, 1),
            "calls_per_s": round(n / total, 1)}


def percentiles(xs: list[float]) -> dict[str, float]:
    xs = sorted(xs)
    q = statistics.quantiles(xs, n=100, method="inclusive")
    return {"p50_ms": round(q[49] * 1000, 1), "p95_ms": round(q[94] * 1000, 1),
            "max_ms": round(xs[-1] * 1000, 1), "n": len(xs)}


def time_requests(requests: dict[str, Callable[[random.Random], Any]], n: int, seed: int
                  ) -> dict[str, dict[str, float]]:
    out = {}
    for name, fn in requests.items():
        rng = random.Random(seed)
        for _ in range(3):  # warm the caches and connection pool
            fn(rng)
        lat = []
        for _ in range(n):
            t = time.perf_counter()
            fn(rng)
            lat.append(time.perf_counter() - t)
        out[name] = percentiles(lat)
        print(f"  {name:<22} p50 {out[name]['p50_ms']:7.1f} ms   p95 {out[name]['p95_ms']:7.1f}"
              f" ms", file=sys.stderr, flush=True)
    return out


def store_requests(store, ids: list[str]) -> dict[str, Callable[[random.Random], Any]]:
    cue_ids = [c[0] for c in make_cues()]
    return {
        "list first page": lambda r: store.list_calls(),
        "list by agent": lambda r: store.list_calls(agent=r.choice(AGENTS)),
        "list by cue": lambda r: store.list_calls(cue=r.choice(cue_ids)),
        "list search q": lambda r: store.list_calls(q=r.choice(QUERIES)),
        "list agent+cue+q": lambda r: store.list_calls(agent=r.choice(AGENTS),
                                                       cue=r.choice(cue_ids),
                                                       q=r.choice(QUERIES)),
        "list page 20": lambda r: store.list_calls(offset=50 * 19),
        "get_call + prosody": lambda r: (store.get_call(c := r.choice(ids)), store.prosody(c)),
    }


def http_requests(base: str, ids: list[str]) -> dict[str, Callable[[random.Random], Any]]:
    """The same requests through the replay API (one kept-alive HTTP/1.1 connection)."""
    import http.client
    from urllib.parse import urlencode, urlsplit

    u = urlsplit(base)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    cue_ids = [c[0] for c in make_cues()]

    def get(path: str, **params: Any) -> bytes:
        conn.request("GET", path + ("?" + urlencode(params) if params else ""))
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            raise RuntimeError(f"GET {path}: {r.status} {body[:200]!r}")
        return body

    return {
        "list first page": lambda r: get("/api/calls"),
        "list by agent": lambda r: get("/api/calls", agent=r.choice(AGENTS)),
        "list by cue": lambda r: get("/api/calls", cue=r.choice(cue_ids)),
        "list search q": lambda r: get("/api/calls", q=r.choice(QUERIES)),
        "call (with prosody)": lambda r: get(f"/api/calls/{r.choice(ids)}"),
    }


def serve(store) -> tuple[str, Callable[[], None]] | None:
    """The replay API on a real uvicorn server in a thread (if coach.io.replay exists)."""
    try:
        from coach.io.replay import create_replay_app
    except ImportError:
        return None
    import socket

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_replay_app(store), host="127.0.0.1",
                                           port=port, log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the replay server did not start")
        time.sleep(0.05)

    def stop() -> None:
        server.should_exit = True
        th.join(timeout=10)

    return f"http://127.0.0.1:{port}", stop


def run(url: str, args: argparse.Namespace, label: str) -> dict[str, Any]:
    store = open_store(url)
    result: dict[str, Any] = {"backend": label, "url": store.url}
    have = store.list_calls(limit=1)[1]
    if have != args.n:
        if have:
            raise SystemExit(f"{store.url} holds {have} calls, not {args.n}: use --fresh "
                             "or another --url")
        print(f"filling {store.url} with {args.n} calls", file=sys.stderr)
        result["fill"] = fill(store, args.n, batch=args.batch, seed=args.seed)
        print(f"  {result['fill']}", file=sys.stderr)
    rows, _ = store.list_calls(limit=min(args.n, 10_000))
    ids = [r["id"] for r in rows]
    c = store.get_call(ids[len(ids) // 2])
    result["example_call"] = {"words": len(c["words"]), "cues": len(c["cues"]),
                              "prosody": len(store.prosody(c["id"]))}
    print(f"store ({label}):", file=sys.stderr)
    result["store"] = time_requests(store_requests(store, ids), args.requests, args.seed)
    served = None if args.no_http else serve(store)
    if served is not None:
        base, stop = served
        print(f"HTTP ({label}, uvicorn + http.client):", file=sys.stderr)
        try:
            result["http"] = time_requests(http_requests(base, ids), args.requests, args.seed)
        finally:
            stop()
    if store.path is not None:
        result["db_mb"] = round(sum(p.stat().st_size for p in store.path.parent.glob(
            store.path.name + "*")) / 2**20, 1)
    store.close()
    return result


def table(results: list[dict[str, Any]]) -> str:
    lines = ["| backend | via | request | p50 ms | p95 ms |", "|---|---|---|---|---|"]
    for res in results:
        for via in ("store", "http"):
            for name, f in res.get(via, {}).items():
                lines.append(f"| {res['backend']} | {via} | {name} | {f['p50_ms']} | "
                             f"{f['p95_ms']} |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=10_000, help="calls to generate (default 10000)")
    p.add_argument("--url", help="store URL (default: SQLite in bench/out/)")
    p.add_argument("--pg", action="store_true", help="also run on a throwaway PostgreSQL")
    p.add_argument("--requests", type=int, default=60, help="timed requests per kind (>= 50)")
    p.add_argument("--batch", type=int, default=50, help="calls per insert transaction")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--fresh", action="store_true", help="rebuild the default SQLite store")
    p.add_argument("--no-http", action="store_true", help="skip the HTTP measurements")
    p.add_argument("--json", help="write the figures here")
    args = p.parse_args()
    if args.requests < 50:
        p.error("--requests: at least 50")
    results = []
    url = args.url
    if url is None:
        path = ROOT / "bench" / "out" / f"store-{args.n}.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        if args.fresh:
            for f in path.parent.glob(path.name + "*"):
                f.unlink()
        url = f"sqlite:///{path}"
    results.append(run(url, args, "sqlite" if url.startswith("sqlite") else "postgresql"))
    if args.pg:
        sys.path.insert(0, str(ROOT / "tests"))
        from pgserver import PgServer

        with PgServer(fast=False, settings={"shared_buffers": "256MB"}) as pg:
            results.append(run(pg.create_database("bench"), args, "postgresql"))
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
