"""Every dataset page renders in Chinese with catalogue labels and no raw message keys or stray English labels."""

import re

from tests.conftest import SHARED_DATA
from tests.datasets.test_search import PCLUE as PCLUE_MAPPING
from tests.datasets.test_search import load

PCLUE = SHARED_DATA / "pclue_train_9.jsonl"
# Catalogue namespaces used by the dataset templates: a leaked key looks like ">ds.title<".
KEY = re.compile(r">\s*((?:ds|import|version|edit|reason|samples|sample|stats|nav|common)\.[a-z_.]+)\s*<")
# English labels that must not appear on a Chinese page (they are catalogue entries).
ENGLISH = ("Datasets", "Upload", "Samples", "Statistics", " chars ", " turns ", "Export", "Versions")


def test_dataset_pages_in_chinese(engine, researcher):
    ds, v, _ = load(engine, researcher.user.id, PCLUE, PCLUE_MAPPING, name="pclue")
    up = researcher.post(f"/api/uploads?filename={PCLUE.name}", content=PCLUE.read_bytes()).json()
    job = researcher.post(f"/api/uploads/{up['upload_id']}/import", json={"policy": "dry_run"}).json()
    sample = re.search(r'href="/samples/(\d+)', researcher.get(f"/datasets/{ds}/v/{v}/samples").text).group(1)
    researcher.cookies.set("lang", "zh")
    pages = [
        "/datasets",
        f"/datasets/{ds}",
        f"/datasets/{ds}/v/{v}/stats",
        f"/datasets/{ds}/v/{v}/samples?q=北京",
        "/datasets/upload",
        f"/uploads/{up['upload_id']}/mapping",
        f"/imports/{job['job_id']}",
        f"/datasets/{ds}/diff?a=1&b=1",
        f"/samples/{sample}",
    ]
    for url in pages:
        r = researcher.get(url)
        assert r.status_code == 200, url
        body = re.sub(r"<(script|style)\b.*?</\1>", "", r.text, flags=re.S)
        assert not KEY.findall(body), (url, KEY.findall(body))
        text = re.sub(r"<[^>]+>", " ", body)
        assert re.search(r"[\u4e00-\u9fff]{2,}", text), url
        stray = [w for w in ENGLISH if w in text]
        assert not stray, (url, stray)
