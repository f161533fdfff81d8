"""Dataset store benchmark: import, indexing, statistics, search and browser latencies at 1M samples.

    .venv/bin/python bench/datasets.py            # 1,000,000 samples (about 10-15 minutes)
    .venv/bin/python bench/datasets.py --n 20000  # a quick run

It generates a messages JSONL file whose prompt/answer lengths are drawn from the
real pCLUE + BELLE records (joint pairs) and whose text is cut from the real
files' text (so 1-2 and 3+ character Chinese queries hit realistically), with
their task_types, ~10% system prompts and ~2% `robustness` tags. Then, on a fresh
SQLite database in a temp dir:
- import through app.datasets.importer.import_file in a child process
  (samples/s, the child's peak RSS),
- index_version in a child process (search indexes + statistics + near dups),
- near-duplicate detection alone in a child process (time, peak RSS),
- statistics page, search (page of 50 and exact count, 1-2 and 3+ characters)
  and browser page latencies (shallow and deep pages) in this process, through
  FastAPI's TestClient for pages and the plain functions for search,
- and checks a sample of search result sets against a brute-force scan.

Absolute rates on these shared machines vary two- to threefold between runs, so each speed is
also printed as a ratio to a baseline measured in the same run:
- the import against a bare batched insert of the same rows (parse each line, join the turns,
  `executemany` 10,000 rows at a time into a fresh SQLite table with the same text columns; no
  validation, hashing, tags table or report), run just before the import;
- search (page of 50 and exact count) against a scan without the search indexes (`instr` over the
  prompt and answer columns, the same substring test for these Chinese queries), on the first
  --scan-queries queries of each length.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import orjson
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))


def load_real() -> tuple[list[tuple[int, int]], list[tuple[str, str]], str]:
    """(prompt_len, answer_len) pairs, task_types, and the real text to cut from."""
    pairs, tasks, texts = [], [], []
    for line in open(DATA / "pclue_train_9.jsonl", encoding="utf-8"):
        r = json.loads(line)
        pairs.append((len(r["input"]), len(r["target"])))
        tasks.append(("pclue", r["type"]))
        texts += [r["input"], r["target"]]
    for line in open(DATA / "belle_eval_set.json", encoding="utf-8"):
        r = json.loads(line)
        if r["std_answer"]:
            pairs.append((len(r["question"]), len(r["std_answer"])))
            tasks.append((" ".join(r["class"].split()), ""))
            texts += [r["question"], r["std_answer"]]
    for line in open(DATA / "belle_zh_seed_tasks.jsonl", encoding="utf-8"):
        r = json.loads(line)
        for inst in r["instances"]:
            texts += [r["instruction"], inst.get("input", ""), inst.get("output", "")]
    return pairs, tasks, "\n".join(t for t in texts if t)


def generate(path: Path, n: int, seed: int = 1) -> None:
    pairs, tasks, corpus = load_real()
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, len(pairs), n)
    cl = len(corpus)
    systems = ["你是一个乐于助人的助手。", "You are a helpful assistant.", "请用中文回答。"]
    short_answers = ["是的", "不是", "也许", "正确", "错误", "好的", "积极", "消极"]
    with open(path, "wb") as f:
        buf = []
        starts_p = rng.integers(0, cl, n)
        starts_a = rng.integers(0, cl, n)
        sys_draw = rng.random(n)
        tag_draw = rng.random(n)
        for i in range(n):
            j = int(pick[i])
            pl, al = pairs[j]
            sp, sa = int(starts_p[i]), int(starts_a[i])
            prompt = corpus[sp : sp + pl] or "问"
            answer = short_answers[sa % len(short_answers)] if al <= 4 else (corpus[sa : sa + al] or "答")
            msgs = []
            if sys_draw[i] < 0.1:
                msgs.append({"role": "system", "content": systems[i % 3]})
            msgs += [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
            l1, l2 = tasks[j]
            rec = {"messages": msgs, "task_type": f"{l1}/{l2}" if l2 else l1}
            if tag_draw[i] < 0.02:
                rec["tags"] = ["robustness"]
            buf.append(orjson.dumps(rec))
            if len(buf) >= 10000:
                f.write(b"\n".join(buf) + b"\n")
                buf = []
        if buf:
            f.write(b"\n".join(buf) + b"\n")


CHILD_IMPORT = r"""
import sys, time, json
from pathlib import Path
sys.path.insert(0, {root!r})
from app.cli import migrate, create_user
from app.models import Role
migrate()
u = create_user(username="bench", password="bench-password-1", role=Role.researcher)
from app.datasets.import_options import ImportOptions
from app.datasets.importer import import_file
from app.datasets.mapping import Mapping
t = time.perf_counter()
r = import_file(path=Path({path!r}), options=ImportOptions(
    mapping=Mapping(shape="messages", task_l1="task_type", tags="tags"), name="bench"), owner_id=u.id,
    enqueue_index=False)
dt = time.perf_counter() - t
import resource
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({{"rss_mb": me.ru_maxrss / 1024, "helper_rss_mb": kids.ru_maxrss / 1024,
                  "cpu_s": me.ru_utime + me.ru_stime, "helper_cpu_s": kids.ru_utime + kids.ru_stime, "status": r.status, "n_ok": r.n_ok, "n_bad": r.n_bad, "seconds": dt,
                  "version_id": r.version_id, "dataset_id": r.dataset_id}}))
"""

CHILD_INDEX = r"""
import sys, time, json
sys.path.insert(0, {root!r})
from worker.kinds.index import index_version
t = time.perf_counter()
index_version(version_id={vid})
import resource
me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({{"seconds": time.perf_counter() - t, "rss_mb": me.ru_maxrss / 1024,
                  "helper_rss_mb": kids.ru_maxrss / 1024, "cpu_s": me.ru_utime + me.ru_stime,
                  "helper_cpu_s": kids.ru_utime + kids.ru_stime}}))
"""

CHILD_NEAR = r"""
import sys, time, json
sys.path.insert(0, {root!r})
from sqlalchemy import text
from app.core.db import get_engine
from app.datasets import neardup
import numpy as np
e = get_engine()
t = time.perf_counter()
sigs, last = [], 0
with e.connect() as c:
    while True:
        rows = c.execute(text("SELECT id, prompt, answer FROM sample WHERE id > :l ORDER BY id LIMIT 20000"),
                         {{"l": last}}).all()
        if not rows:
            break
        sigs.append(neardup.signatures([r[1] + "\n" + r[2] for r in rows]))
        last = rows[-1][0]
groups = neardup.clusters(np.concatenate(sigs))
import resource
print(json.dumps({{"seconds": time.perf_counter() - t, "groups": len(groups),
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


BARE_TABLE = (
    "CREATE TABLE sample (id INTEGER PRIMARY KEY, messages TEXT NOT NULL, prompt TEXT NOT NULL, "
    "answer TEXT NOT NULL, task_l1 TEXT NOT NULL, tags TEXT NOT NULL)"
)


def bare_insert(path: Path, db_path: Path, batch_size: int = 10_000) -> tuple[int, float]:
    """(rows, seconds) of the import's baseline: the same rows into a fresh SQLite table, nothing else.

    Same pragmas as the app's engine (WAL, synchronous=NORMAL), one transaction per batch. The ratio of
    the import's rate to this one says what the importer costs over storing the rows at all, and, unlike
    the absolute rate, it does not move with the load other processes put on the machine."""
    import sqlite3

    db = sqlite3.connect(db_path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(BARE_TABLE)
    insert = "INSERT INTO sample (messages, prompt, answer, task_l1, tags) VALUES (?, ?, ?, ?, ?)"
    t = time.perf_counter()
    n, batch = 0, []
    with open(path, "rb") as f:
        for line in f:
            rec = orjson.loads(line)
            msgs = rec["messages"]
            prompt = "\n".join(m["content"] for m in msgs if m["role"] != "assistant")
            answer = "\n".join(m["content"] for m in msgs if m["role"] == "assistant")
            tags = ",".join(rec.get("tags", ()))
            batch.append((orjson.dumps(msgs).decode(), prompt, answer, rec["task_type"], tags))
            if len(batch) >= batch_size:
                db.executemany(insert, batch)
                db.commit()
                n, batch = n + len(batch), []
    if batch:
        db.executemany(insert, batch)
        db.commit()
        n += len(batch)
    seconds = time.perf_counter() - t
    db.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_path}{suffix}").unlink(missing_ok=True)
    return n, seconds


SCAN_WHERE = "dataset_id = :d AND (instr(prompt, :q) > 0 OR instr(answer, :q) > 0)"


def scan_search(conn, *, dataset_id: int, q: str) -> tuple[float, float, int]:  # noqa: ANN001
    """(page seconds, count seconds, hits) of search without its indexes: the baseline of the search
    figures. The bench's queries are Chinese, where fold() changes nothing, so `instr` is the same
    substring test as the app's search (the brute-force check at the end compares result sets)."""
    t = time.perf_counter()
    conn.execute(
        text(f"SELECT id FROM sample WHERE {SCAN_WHERE} ORDER BY id LIMIT 50"), {"d": dataset_id, "q": q}
    ).all()
    page_s = time.perf_counter() - t
    t = time.perf_counter()
    hits = conn.execute(
        text(f"SELECT count(*) FROM sample WHERE {SCAN_WHERE}"), {"d": dataset_id, "q": q}
    ).scalar_one()
    return page_s, time.perf_counter() - t, hits


def child(code: str, env: dict) -> tuple[dict, float]:
    """Runs code in a fresh interpreter; returns its last JSON line and the peak RSS (MB) it measured itself
    (this process's RUSAGE_CHILDREN would give the maximum over all earlier children, hiding a smaller
    later peak). Import and indexing start one helper process each (parsing; statistics), whose peak the
    child reports as its own RUSAGE_CHILDREN ("helper_rss_mb"): the two peaks' sum bounds the memory used."""
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"child failed:\n{out.stderr[-4000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result, float(result["rss_mb"])


def pct(xs: list[float]) -> tuple[float, float]:
    a = np.asarray(xs) * 1000
    return float(np.percentile(a, 50)), float(np.percentile(a, 95))


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--reps", type=int, default=200)
    ap.add_argument(
        "--scan-queries",
        type=int,
        default=10,
        help="queries of each length timed against the index-free scan",
    )
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="sftlab-bench-"))
    env = dict(
        os.environ,
        SFTLAB_DATA_DIR=str(tmp),
        SFTLAB_DATABASE_URL=f"sqlite:///{tmp}/sftlab.db",
        SFTLAB_SECRET_KEY="bench",
    )
    os.environ.update({k: env[k] for k in ("SFTLAB_DATA_DIR", "SFTLAB_DATABASE_URL", "SFTLAB_SECRET_KEY")})
    path = tmp / "bench.jsonl"
    t = time.perf_counter()
    generate(path, args.n)
    print(
        f"generated {args.n:,} samples ({path.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t:.1f} s",
        flush=True,
    )

    # 1. import (child process: its peak RSS is the import's), right after its baseline
    load = os.getloadavg()[0]
    n_bare, s_bare = bare_insert(path, tmp / "bare.db")
    bare_rate = n_bare / s_bare
    imp, rss_imp = child(CHILD_IMPORT.format(root=str(ROOT), path=str(path)), env)
    rate = imp["n_ok"] / imp["seconds"]
    rss_imp_all = rss_imp + imp["helper_rss_mb"]
    print(
        f"import: {imp['n_ok']:,} samples in {imp['seconds']:.1f} s = {rate:,.0f} samples/s "
        f"= x{rate / bare_rate:.2f} of a bare batched SQLite insert of the same rows in this run "
        f"({n_bare:,} in {s_bare:.1f} s = {bare_rate:,.0f}/s) "
        f"[{verdict(rate >= 50_000)} >= 50,000/s]; peak RSS {rss_imp:.0f} MB + parsing process "
        f"{imp['helper_rss_mb']:.0f} MB = {rss_imp_all:.0f} MB [{verdict(rss_imp_all < 500)} < 500 MB]; "
        f"CPU {imp['cpu_s']:.1f} s + parsing process {imp['helper_cpu_s']:.1f} s (load average before: {load:.1f})",
        flush=True,
    )
    # 2. indexing + statistics + near dups
    idx, rss_idx = child(CHILD_INDEX.format(root=str(ROOT), vid=imp["version_id"]), env)
    total = imp["seconds"] + idx["seconds"]
    from app.core.db import get_engine

    engine = get_engine()
    from sqlmodel import Session

    from app.models import DatasetVersion

    with Session(engine) as s_:
        version_row = s_.get(DatasetVersion, imp["version_id"])
        assert version_row is not None and version_row.stats_json is not None
        status, st = version_row.status.value, json.loads(version_row.stats_json)
    print(
        f"indexing (search indexes + statistics + near dups): {idx['seconds']:.1f} s (status {status}; "
        f"index {st['timings']['index_s']:.1f} s, statistics {st['seconds']:.1f} s"
        f" incl. near dups {st['near_duplicates']['seconds']:.1f} s; statistics "
        f"{'in a second process beside the index build' if st['timings'].get('stats_in_parallel') else 'after it'});"
        f" peak RSS {rss_idx:.0f} MB + statistics process {idx['helper_rss_mb']:.0f} MB;"
        f" CPU {idx['cpu_s']:.1f} s + statistics process {idx['helper_cpu_s']:.1f} s"
        f" (load average now: {os.getloadavg()[0]:.1f})"
    )
    print(f"upload finished -> fully searchable: {total:.1f} s [{verdict(total < 360)} < 6 min]", flush=True)
    # 3. near duplicates alone
    near, rss_near = child(CHILD_NEAR.format(root=str(ROOT)), env)
    print(
        f"near duplicates alone (read texts + MinHash 128 perm + LSH 16x8 + verify): {near['seconds']:.1f} s, "
        f"{near['groups']} clusters; peak RSS {rss_near:.0f} MB [{verdict(near['seconds'] < 120)} < 2 min]",
        flush=True,
    )
    print(
        f"  exact duplicate groups {st['exact_duplicates']['groups']:,}, near-duplicate groups "
        f"{st['near_duplicates']['groups']:,}"
    )

    # 4. latencies
    from fastapi.testclient import TestClient

    from app.datasets.browse import BrowseFilters, all_matching_ids, browse_page, count_matching
    from app.datasets.search import fold
    from app.main import app

    ds, vid = imp["dataset_id"], imp["version_id"]
    client = TestClient(app)
    r = client.post(
        "/login", data={"username": "bench", "password": "bench-password-1"}, follow_redirects=False
    )
    assert r.status_code == 303, r.text
    reps = args.reps
    from app.api.routes.samples import page_context
    from app.api.routes.stats import stats_context
    from app.core.i18n import translate
    from app.datasets.browse import get_version
    from app.models import User
    from app.web import templates

    def render_direct(name: str, ctx: dict) -> str:
        return templates.env.get_template(name).render(
            {**ctx, "t": lambda k: translate(k, "en"), "lang": "en", "csrf_token": "x", "request": None}
        )

    with Session(engine) as s0:
        bench_user = s0.get(User, 1)

    def stats_direct() -> str:
        with Session(engine) as s1:
            d_, v_ = get_version(s1, dataset_id=ds, number=1)
            return render_direct("pages/stats.html", stats_context(s1, d_, v_, bench_user))

    times, times_http = [], []
    for _ in range(reps + 5):
        t = time.perf_counter()
        stats_direct()
        times.append(time.perf_counter() - t)
    for _ in range(min(reps, 50) + 5):
        t = time.perf_counter()
        r = client.get(f"/datasets/{ds}/v/1/stats")
        times_http.append(time.perf_counter() - t)
        assert r.status_code == 200
    base_http = []
    for _ in range(55):
        t = time.perf_counter()
        client.get("/healthz")
        base_http.append(time.perf_counter() - t)
    p50, p95 = pct(times[5:])
    h50, h95 = pct(times_http[5:])
    z50, z95 = pct(base_http[5:])
    print(
        f"statistics page (query + parse cache + template render): p50 {p50:.2f} ms, p95 {p95:.2f} ms "
        f"[{verdict(p95 < 10)} < 10 ms]; through TestClient p50 {h50:.2f} ms p95 {h95:.2f} ms "
        f"(TestClient's own /healthz: p50 {z50:.2f} ms p95 {z95:.2f} ms)",
        flush=True,
    )

    rng = random.Random(3)
    with engine.connect() as c:
        sample_texts = [
            row[0]
            for row in c.execute(
                text("SELECT prompt FROM sample WHERE id % 997 = 0 AND length(prompt) > 12 LIMIT 3000")
            )
        ]

    def cjk(s: str) -> bool:
        return all("\u4e00" <= ch <= "\u9fff" for ch in s)

    def draw(k: int, n: int) -> list[str]:
        out: list[str] = []
        while len(out) < n:
            t_ = rng.choice(sample_texts)
            i = rng.randrange(0, len(t_) - k)
            q = t_[i : i + k]
            if cjk(q):
                out.append(q)
        return out

    short_q = draw(1, reps // 2) + draw(2, reps // 2)
    long_q = [q for k in (3, 4, 5, 6) for q in draw(k, reps // 4)]
    with Session(engine) as s:
        for label, qs in (("1-2 chars", short_q), ("3+ chars", long_q)):
            tp, tc, hits = [], [], []
            for q in qs:
                f = BrowseFilters(q=q)
                t = time.perf_counter()
                page = browse_page(s, dataset_id=ds, version=1, version_id=vid, filters=f)
                tp.append(time.perf_counter() - t)
                t = time.perf_counter()
                n_hits = count_matching(s, dataset_id=ds, version=1, version_id=vid, filters=f)
                tc.append(time.perf_counter() - t)
                hits.append(n_hits)
                assert len(page.rows) == min(50, n_hits)
            a50, a95 = pct(tp)
            c50, c95 = pct(tc)
            k = min(args.scan_queries, len(qs))
            with engine.connect() as c:
                scans = [scan_search(c, dataset_id=ds, q=q) for q in qs[:k]]
            assert [h for _, _, h in scans] == hits[:k], "the scan and the search disagree"
            sp50, sc50 = pct([p for p, _, _ in scans])[0], pct([n for _, n, _ in scans])[0]
            # the same k queries through the indexes, so the ratio compares like with like
            ip50, ic50 = pct(tp[:k])[0], pct(tc[:k])[0]
            print(
                f"search {label} ({len(qs)} Chinese queries, median {int(np.median(hits)):,} hits, max "
                f"{max(hits):,}): page of 50 p50 {a50:.2f} ms p95 {a95:.2f} ms [{verdict(a95 < 10)} < 10 ms]; "
                f"exact count p50 {c50:.2f} ms p95 {c95:.2f} ms [{verdict(c95 < 50)} < 50 ms]",
                flush=True,
            )
            print(
                f"  against a scan without the indexes in this run ({k} of those queries, p50): page of 50 "
                f"{sp50:.2f} ms vs {ip50:.2f} ms = x{sp50 / ip50:,.1f} faster; exact count {sc50:.2f} ms vs "
                f"{ic50:.2f} ms = x{sc50 / ic50:,.1f} faster",
                flush=True,
            )
        # through HTTP too (highlighting + template)
        th = []
        for q in short_q[:50] + long_q[:50]:
            t = time.perf_counter()
            r = client.get(f"/datasets/{ds}/v/1/samples", params={"q": q})
            th.append(time.perf_counter() - t)
        h50, h95 = pct(th)
        print(
            f"search results page (HTTP incl. highlighting, 100 queries): p50 {h50:.2f} ms, p95 {h95:.2f} ms"
        )
        # brute-force check on a sample of queries, one scan for all of them
        check = short_q[:10] + long_q[:10]
        fq = [fold(q) for q in check]
        want: list[list[int]] = [[] for _ in check]
        with engine.connect() as c:
            for sid, p, a in c.execute(
                text("SELECT id, prompt, answer FROM sample WHERE dataset_id = :d ORDER BY id"), {"d": ds}
            ):
                fp, fa = fold(p), fold(a)
                for i, q in enumerate(fq):
                    if q in fp or q in fa:
                        want[i].append(sid)
        ok = all(
            all_matching_ids(s, dataset_id=ds, version=1, filters=BrowseFilters(q=q)) == w
            for q, w in zip(check, want, strict=False)
        )
        print(
            f"brute-force check of {len(check)} result sets ({sum(map(len, want)):,} ids): "
            f"{'equal' if ok else 'DIFFERENT'} [{verdict(ok)}]",
            flush=True,
        )

    # browser pages: first, keyset next, deep jumps, last; unfiltered and by task_type
    n_pages = (imp["n_ok"] + 49) // 50
    big_task = st["task_tree"][0]["l1"]
    task_pages = (st["task_tree"][0]["count"] + 49) // 50
    urls = []
    for p in (1, 2, 10, 100, n_pages // 2, n_pages - 1, n_pages):
        urls.append(f"/datasets/{ds}/v/1/samples?page={max(p, 1)}")
    for p in (1, task_pages // 2, task_pages):
        urls.append(f"/datasets/{ds}/v/1/samples?task={big_task}&page={max(p, 1)}")
    urls.append(f"/datasets/{ds}/v/1/samples?tag=robustness&page=2")
    with Session(engine) as s:
        mid = browse_page(
            s, dataset_id=ds, version=1, version_id=vid, filters=BrowseFilters(), page=n_pages // 2
        )
    urls.append(f"/datasets/{ds}/v/1/samples?after={mid.last_id}")
    urls.append(f"/datasets/{ds}/v/1/samples?before={mid.first_id}")
    from urllib.parse import parse_qsl, urlsplit

    from app.datasets.browse import filters_from, parse_int

    def browse_direct(u: str) -> str:
        params = dict(parse_qsl(urlsplit(u).query))
        nav = {k: parse_int(k, params.get(k)) for k in ("after", "before", "page")}
        with Session(engine) as s1:
            d_, v_ = get_version(s1, dataset_id=ds, number=1)
            return render_direct(
                "pages/samples.html", page_context(s1, d_, v_, filters_from(params), nav, bench_user)
            )

    tb: dict[str, list[float]] = {u: [] for u in urls}
    th2: list[float] = []
    for _ in range(max(reps // 10, 5)):
        for u in urls:
            t = time.perf_counter()
            browse_direct(u)
            tb[u].append(time.perf_counter() - t)
    for u in urls * 3:
        t = time.perf_counter()
        r = client.get(u)
        th2.append(time.perf_counter() - t)
        assert r.status_code == 200, u
    alltimes = [x for v in tb.values() for x in v]
    b50, b95 = pct(alltimes)
    h50, h95 = pct(th2)
    worst = max(urls, key=lambda u: pct(tb[u])[1])
    print(
        f"browser page (queries + template render; {len(urls)} pages incl. page {n_pages // 2:,} and {n_pages:,} "
        f"of {n_pages:,}, task_type and tag filters, keyset after/before): p50 {b50:.2f} ms, p95 {b95:.2f} ms "
        f"[{verdict(b95 < 10)} < 10 ms]; slowest {worst} p95 {pct(tb[worst])[1]:.2f} ms; "
        f"through TestClient p50 {h50:.2f} ms p95 {h95:.2f} ms"
    )
    print(f"database size: {(tmp / 'sftlab.db').stat().st_size / 2**20:.0f} MiB; temp dir {tmp}")
    if not args.keep:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
