"""A fresh process analyses every route while it starts, not during its first requests."""

import fastapi.routing
from fastapi.testclient import TestClient

from app.main import create_app


def test_no_route_is_analysed_after_startup(settings, monkeypatch):
    analysed: list[str] = []
    real = fastapi.routing.get_dependant

    def counting(*, path: str, call, **kwargs):  # noqa: ANN001, ANN003
        analysed.append(path)
        return real(path=path, call=call, **kwargs)

    monkeypatch.setattr(fastapi.routing, "get_dependant", counting)
    app = create_app()
    with TestClient(app) as client:
        at_start = len(analysed)
        for path in ("/api/runs/1/series", "/api/datasets", "/runs/1", "/healthz"):
            client.get(path, headers={"accept": "application/json"})
    assert at_start > 20  # the routes were analysed while starting...
    assert analysed[at_start:] == []  # ...so no request pays for it
