"""How long a search across chats takes: a history of N exchanges (in chats of 20) in a real SQLite file, then
queries as the search box sends them (app.models.search.fts_query: every word, the last as a prefix), newest 50
results with snippets. Also the time to build the index for a history saved before search existed. Prints
figures; asserts nothing. Target: a query answers in <= 50 ms with 10,000 exchanges.

    .venv/bin/python bench/chat_search.py [--exchanges 10000] [--answer-words 150]
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

QUERIES = ["gpu", "cold start", "word1", "walrus", "pyth", "answer 9999", "the", "zzz nothing matches"]
VOCABULARY = ["gpu", "cold", "start", "model", "token", "python", "cost", "idle", "redis", "lambda", "the", "a",
              "answer", "prompt", "stream", "cache"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchanges", type=int, default=10_000)
    parser.add_argument("--answer-words", type=int, default=150)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)

    from app.models.chat import Chat, exchange_record
    from app.models.exchange import DONE, Exchange
    from app.models.search import RESULT_LIMIT, fts_query
    from app.services.history_store import HistoryStore, chat_row

    rng = random.Random(15)
    path = Path(tempfile.mkdtemp(prefix="tlfif-search-")) / "history.sqlite3"
    store, _ = HistoryStore.open(path)
    started = time.perf_counter()
    t0 = 1_795_000_000.0
    chat = None
    store._conn.execute("PRAGMA synchronous = OFF")  # set-up speed only; the app keeps the default
    with store._conn:
        for n in range(args.exchanges):
            if n % 20 == 0:
                chat = Chat.new(now=t0 + n)
                chat.title = f"Chat {n // 20}"
                store.save_chat(chat_row(chat))
            words = " ".join(rng.choice(VOCABULARY) + (str(rng.randrange(50)) if rng.random() < 0.2 else "")
                             for _ in range(args.answer_words))
            text = f"Answer {n}: {words}" + (" a walrus appears" if n % 1000 == 7 else "")
            exchange = Exchange(request_id=f"r{n}", backend="aws", backend_label="AWS", prompt=f"Question {n} "
                                f"about {rng.choice(VOCABULARY)}", started_at=t0 + n, idle=5, text=text,
                                status=DONE, chat_id=chat.id)
            store.save_exchange(chat.id, exchange_record(exchange))
    print(f"history: {args.exchanges} exchanges of ~{args.answer_words} words, saved in "
          f"{time.perf_counter() - started:.1f} s, {path.stat().st_size / 1e6:.1f} MB")

    worst = 0.0
    for typed in QUERIES:
        match = fts_query(typed)
        times, hits = [], []
        for _ in range(args.repeat):
            t = time.perf_counter()
            hits = store.search(match, RESULT_LIMIT)
            times.append((time.perf_counter() - t) * 1000)
        worst = max(worst, max(times))
        print(f"  {typed!r:24} {len(hits):3} hits  p50 {statistics.median(times):6.2f} ms  max {max(times):6.2f} ms")
    print(f"query max {worst:.1f} ms (target <= 50 ms)")

    store._conn.executescript("DROP TRIGGER exchanges_fts_insert; DROP TRIGGER exchanges_fts_delete; "
                              "DROP TRIGGER exchanges_fts_update; DROP TABLE exchanges_fts;")
    store.close()
    t = time.perf_counter()
    store, _ = HistoryStore.open(path)
    print(f"index rebuilt for a history without one (opening it): {(time.perf_counter() - t) * 1000:.0f} ms")
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
