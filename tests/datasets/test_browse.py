"""The sample browser's filters, keyset pages, page jumps and counts agree with a plain Python filter over the version."""

import json
import random

from sqlalchemy import text
from sqlmodel import Session

from app.datasets.browse import PAGE_SIZE, BrowseFilters, all_matching_ids, browse_page, count_matching
from app.datasets.mapping import Mapping
from app.datasets.search import fold
from app.models import Role
from tests.datasets.test_search import load

BROWSE_MAPPING = Mapping(shape="messages", task_l1="task_type", tags="tags")


def write_random_samples(tmp_path, n: int):
    """n seeded samples over a small alphabet (so filters and searches hit often), as messages JSONL."""
    rng = random.Random(11)
    lines = []
    for _i in range(n):
        p = "".join(rng.choice("北京上海天津答案abc ") for _ in range(rng.randint(1, 60)))
        a = "".join(rng.choice("是的不对xyz") for _ in range(rng.randint(1, 30)))
        tags = [t for t in ("robustness", "hard", "dup") if rng.random() < 0.2]
        lines.append(
            json.dumps(
                {
                    "messages": [{"role": "user", "content": p}, {"role": "assistant", "content": a}],
                    "task_type": rng.choice(["cls/a", "cls/b", "cls", "gen/x", "qa"]),
                    "tags": tags,
                },
                ensure_ascii=False,
            )
        )
    path = tmp_path / "b.jsonl"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def make(engine, make_user, tmp_path, n=700):
    user = make_user(Role.researcher)
    return load(engine, user.id, write_random_samples(tmp_path, n), BROWSE_MAPPING, name="b")


def expected(engine, ds, version, f: BrowseFilters) -> list[int]:
    with engine.connect() as c:
        rows = c.execute(
            text(
                "SELECT id, prompt, answer, task_l1, task_l2, tags, prompt_chars, answer_chars"
                " FROM sample WHERE dataset_id = :d AND added_in <= :v AND (removed_in IS NULL OR"
                " removed_in > :v) ORDER BY id"
            ),
            {"d": ds, "v": version},
        ).all()
    out = []
    for r in rows:
        if f.task:
            l1, l2 = f.task_parts()
            if r.task_l1 != l1 or (l2 is not None and r.task_l2 != l2):
                continue
        if f.tag and f.tag not in r.tags.split(","):
            continue
        n = r.answer_chars if f.length_of == "answer" else r.prompt_chars
        if f.min_chars is not None and n < f.min_chars or f.max_chars is not None and n > f.max_chars:
            continue
        if f.q and not any(
            fold(f.q) in fold(x)
            for x in (
                [r.prompt, r.answer]
                if f.field == "all"
                else [r.prompt]
                if f.field == "prompt"
                else [r.answer]
            )
        ):
            continue
        out.append(r.id)
    return out


FILTERS = [
    BrowseFilters(),
    BrowseFilters(task="cls"),
    BrowseFilters(task="cls/a"),
    BrowseFilters(task="cls/"),
    BrowseFilters(task="qa"),
    BrowseFilters(tag="robustness"),
    BrowseFilters(tag="hard", task="cls"),
    BrowseFilters(min_chars=5, max_chars=20),
    BrowseFilters(min_chars=30, length_of="prompt"),
    BrowseFilters(q="北京", task="gen/x"),
    BrowseFilters(q="答案a", tag="dup"),
    BrowseFilters(q="是", field="answer", max_chars=10),
    BrowseFilters(task="nope"),
]


def test_filters_pages_and_counts(engine, make_user, tmp_path):
    ds, version, vid = make(engine, make_user, tmp_path)
    with Session(engine) as s:
        for f in FILTERS:
            want = expected(engine, ds, version, f)
            assert all_matching_ids(s, dataset_id=ds, version=version, filters=f) == want, f
            assert count_matching(s, dataset_id=ds, version=version, version_id=vid, filters=f) == len(
                want
            ), f
            # walk forward with keyset pages, then back with `before`
            got, after, pages = [], None, []
            while True:
                p = browse_page(s, dataset_id=ds, version=version, version_id=vid, filters=f, after=after)
                got += [r["id"] for r in p.rows]
                pages.append([r["id"] for r in p.rows])
                if not p.has_next:
                    break
                after = p.last_id
            assert got == want, f
            if len(pages) > 1:
                p = browse_page(
                    s, dataset_id=ds, version=version, version_id=vid, filters=f, before=pages[-1][0]
                )
                assert [r["id"] for r in p.rows] == pages[-2]
            # jump to page N (anchors where precomputed, OFFSET otherwise)
            for n in range(1, len(pages) + 1):
                p = browse_page(s, dataset_id=ds, version=version, version_id=vid, filters=f, page=n)
                assert [r["id"] for r in p.rows] == want[(n - 1) * PAGE_SIZE : n * PAGE_SIZE], (f, n)


def test_page_anchors_exist_for_unfiltered_task_and_tag(engine, make_user, tmp_path):
    ds, version, vid = make(engine, make_user, tmp_path)
    with engine.connect() as c:
        keys = {
            r[0]
            for r in c.execute(
                text("SELECT DISTINCT key FROM sample_fts_anchor WHERE version_id = :v"), {"v": vid}
            )
        }
    assert {"", "t:cls", "t:cls/a", "g:robustness"} <= keys
    assert BrowseFilters(task="cls/a").anchor_key() == "t:cls/a"
    assert BrowseFilters(q="x").anchor_key() is None


def test_dropped_rows_leave_the_next_version(engine, make_user, tmp_path):
    """After an edit drops rows, the new version's pages, anchors and counts skip them; the old one keeps them."""
    from app.datasets.versions import edit_version

    ds, version, vid = make(engine, make_user, tmp_path)
    with Session(engine) as s:
        ids = all_matching_ids(s, dataset_id=ds, version=version, filters=BrowseFilters(task="cls/a"))
        owner = s.execute(text("SELECT owner_id FROM dataset WHERE id = :d"), {"d": ds}).scalar_one()
        res = edit_version(
            s,
            dataset_id=ds,
            base_version=version,
            user_id=owner,
            action="drop",
            sample_ids=ids[:30],
            filters=None,
            value="",
            message="drop",
        )
        s.commit()
        v2, v2id = res.version.number, res.version.id
    from worker.kinds.index import index_version

    index_version(version_id=v2id)
    with Session(engine) as s:
        for f in FILTERS[:8]:
            want = expected(engine, ds, v2, f)
            got = [
                r["id"]
                for n in range(1, 20)
                for r in browse_page(s, dataset_id=ds, version=v2, version_id=v2id, filters=f, page=n).rows
            ]
            assert got == want, f
        assert count_matching(
            s, dataset_id=ds, version=v2, version_id=v2id, filters=BrowseFilters(q="北")
        ) == len(expected(engine, ds, v2, BrowseFilters(q="北")))
        assert len(all_matching_ids(s, dataset_id=ds, version=version, filters=BrowseFilters())) == 700
