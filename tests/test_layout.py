"""The layout holds: app/ never imports worker/ (it sends jobs by task name), trainer/ never imports app/ or
worker/, and the web process serves every page without torch or transformers."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

from sqlmodel import Session

from app.models import Role
from tests.conftest import PASSWORD
from tests.runs.fake_runs import make_run, synthetic_events

REPO = Path(__file__).resolve().parents[1]


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def offenders(package: str, forbidden: tuple[str, ...]) -> list[str]:
    out = []
    for path in sorted((REPO / package).rglob("*.py")):
        for module in imported_modules(path):
            if module.split(".")[0] in forbidden:
                out.append(f"{path.relative_to(REPO)} imports {module}")
    return out


def test_app_never_imports_worker():
    assert offenders("app", ("worker",)) == []


def test_trainer_never_imports_app_or_worker():
    assert offenders("trainer", ("app", "worker")) == []


def test_the_check_sees_an_import(tmp_path):
    (tmp_path / "m.py").write_text("import os\nfrom worker.runner import execute\n")
    assert "worker.runner" in imported_modules(tmp_path / "m.py")


# Run in a fresh interpreter: this test process has imported torch for other tests long ago.
SERVE_EVERY_PAGE = r"""
import json, sys
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
import app.runs.samples
app.runs.samples.RENDER_TIMEOUT = 1.0  # no worker here: the sample page says it could not render
from app.main import app
client = TestClient(app)
r = client.post("/login", data={"username": "boss", "password": sys.argv[1]}, follow_redirects=False)
assert r.status_code == 303, r.text
ids = json.loads(sys.argv[2])
served = {}
for rc in iter_route_contexts(app.routes):
    dependant = getattr(rc, "dependant", None)
    if dependant is None or "GET" not in (rc.methods or ()):
        continue
    path = rc.path
    for param in dependant.path_params:
        path = path.replace("{" + param.name + "}", str(ids.get(param.name, 1)))
    served[path] = client.get(path, follow_redirects=False).status_code
heavy = [m for m in ("torch", "transformers", "deepspeed", "vllm") if m in sys.modules]
print(json.dumps({"served": served, "heavy": heavy}))
"""


def test_the_web_process_serves_every_page_without_torch(settings, make_user, tmp_path):
    admin = make_user(Role.admin, "boss")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "train.jsonl").write_text(
        json.dumps({"messages": [{"role": "user", "content": "1+1?"}, {"role": "assistant", "content": "2"}]})
        + "\n"
    )
    from app.core.db import get_engine

    with Session(get_engine(settings)) as session:
        run = make_run(session, admin.id, run_dir=run_dir, events=synthetic_events(6))
    env = {
        **os.environ,
        "SFTLAB_DATA_DIR": str(settings.data_dir),
        "SFTLAB_DATABASE_URL": settings.sqlalchemy_url,
    }
    env["SFTLAB_REAPER_INTERVAL"] = "0"
    ids = {"run_id": run.id, "index": 0, "job_id": run.job_id}
    proc = subprocess.run(
        [sys.executable, "-c", SERVE_EVERY_PAGE, PASSWORD, json.dumps(ids)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["heavy"] == [], f"the web process imported {out['heavy']}"
    assert out["served"][f"/runs/{run.id}/samples/0"] == 200  # the viewer ran, through a job
    assert out["served"][f"/runs/{run.id}"] == 200
    assert len(out["served"]) > 30
    assert not [p for p, code in out["served"].items() if code >= 500], out["served"]
