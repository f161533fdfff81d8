"""The endpoint client against a real local HTTP server imitating the OpenAI API: replies, usage, retries on 429/5xx honouring Retry-After, and one-line errors."""

import email.utils
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from app.judge.client import Endpoint, EndpointError, chat

KEY = "sk-test-0123456789abcdef"
MESSAGES = [{"role": "user", "content": "Judge this."}]


class FakeOpenAI(BaseHTTPRequestHandler):
    """POST /<scenario>/v1/chat/completions; each scenario answers as a real endpoint can."""

    calls: Counter = Counter()
    bodies: list[dict] = []

    def log_message(self, *args):  # quiet test output
        pass

    def _send(self, status, body, headers=None, content_type="application/json"):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):  # noqa: N802 - http.server's naming
        scenario, _, rest = self.path.strip("/").partition("/")
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).bodies.append(body)
        n = type(self).calls[scenario] = type(self).calls[scenario] + 1
        if rest != "v1/chat/completions":
            return self._send(404, {"error": {"message": f"Unknown path {self.path}"}})
        if self.headers.get("Authorization") != f"Bearer {KEY}":
            key = self.headers.get("Authorization", "").removeprefix("Bearer ")
            return self._send(401, {"error": {"message": f"Incorrect API key provided: {key}."}})
        ok = {
            "id": "chatcmpl-1",
            "model": body["model"] + "-2026",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": 'Good. {"Clarity": 8}'},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19},
        }
        if scenario == "ok":
            return self._send(200, ok)
        if scenario == "429-then-200":
            if n == 1:
                return self._send(429, {"error": {"message": "Rate limit reached"}}, {"Retry-After": "2"})
            return self._send(200, ok)
        if scenario == "429-date-then-200":
            if n == 1:
                later = email.utils.formatdate(time.time() + 30, usegmt=True)
                return self._send(429, {"error": {"message": "slow down"}}, {"Retry-After": later})
            return self._send(200, ok)
        if scenario == "503-503-200":
            if n <= 2:
                return self._send(503, b"<html>Service Unavailable</html>", content_type="text/html")
            return self._send(200, ok)
        if scenario == "500":
            return self._send(500, {"error": {"message": "The server had an error"}})
        if scenario == "429-long":
            return self._send(429, {"error": {"message": "quota"}}, {"Retry-After": "3600"})
        if scenario == "slow":
            time.sleep(0.6)
            return self._send(200, ok)
        if scenario == "not-json":
            return self._send(200, b"<html>Welcome to nginx!</html>", content_type="text/html")
        if scenario == "no-choices":
            return self._send(200, {"object": "list", "data": []})
        if scenario == "no-usage":
            return self._send(200, {k: v for k, v in ok.items() if k != "usage"})
        if scenario == "bad-model":
            return self._send(404, {"error": {"message": f"The model `{body['model']}` does not exist"}})
        if scenario == "bad-request":
            return self._send(400, {"error": {"message": "max_tokens is too large: 999999"}})
        return self._send(500, {"error": {"message": f"unknown scenario {scenario}"}})


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(autouse=True)
def fresh_counts():
    FakeOpenAI.calls.clear()
    FakeOpenAI.bodies.clear()


def endpoint(server: str, scenario: str, **kw) -> Endpoint:
    return Endpoint(base_url=f"{server}/{scenario}/v1", model="judge-model", api_key=KEY, **kw)


def test_reply_text_usage_and_request_body(server):
    result = chat(endpoint(server, "ok", temperature=0.3, max_tokens=512), MESSAGES)
    assert result.text == 'Good. {"Clarity": 8}'
    assert (result.prompt_tokens, result.completion_tokens, result.total_tokens) == (12, 7, 19)
    assert (result.model, result.finish_reason) == ("judge-model-2026", "stop")
    assert FakeOpenAI.bodies == [
        {"model": "judge-model", "messages": MESSAGES, "temperature": 0.3, "max_tokens": 512}
    ]


def test_full_url_and_shared_client(server):
    with httpx.Client() as client:
        e = Endpoint(base_url=f"{server}/ok/v1/chat/completions/", model="m", api_key=KEY)
        assert chat(e, MESSAGES, client=client).text.startswith("Good")
        assert chat(e, MESSAGES, client=client).text.startswith("Good")
    assert FakeOpenAI.calls["ok"] == 2


def test_missing_usage_gives_none(server):
    result = chat(endpoint(server, "no-usage"), MESSAGES)
    assert result.text and result.total_tokens is None


def test_429_then_200_waits_what_retry_after_asks(server):
    waits: list[float] = []
    result = chat(endpoint(server, "429-then-200"), MESSAGES, sleep=waits.append)
    assert result.text.startswith("Good")
    assert waits == [2.0] and FakeOpenAI.calls["429-then-200"] == 2


def test_retry_after_as_http_date(server):
    waits: list[float] = []
    chat(endpoint(server, "429-date-then-200"), MESSAGES, sleep=waits.append)
    assert len(waits) == 1 and 25 <= waits[0] <= 30


def test_5xx_backs_off_exponentially_then_succeeds(server):
    waits: list[float] = []
    result = chat(endpoint(server, "503-503-200", backoff=0.5), MESSAGES, sleep=waits.append)
    assert result.text.startswith("Good") and waits == [0.5, 1.0]


def test_persistent_500_gives_up_after_bounded_tries(server):
    waits: list[float] = []
    with pytest.raises(EndpointError) as info:
        chat(endpoint(server, "500", max_retries=3), MESSAGES, sleep=waits.append)
    assert str(info.value) == (
        "the endpoint is still failing after 4 tries (HTTP 500): The server had an error"
    )
    assert FakeOpenAI.calls["500"] == 4 and waits == [1.0, 2.0, 4.0]


def test_backoff_is_capped_at_max_wait(server):
    waits: list[float] = []
    with pytest.raises(EndpointError, match="still failing after 5 tries"):
        chat(endpoint(server, "500", backoff=2.0, max_wait=5.0), MESSAGES, sleep=waits.append)
    assert waits == [2.0, 4.0, 5.0, 5.0]


def test_retry_after_beyond_max_wait_is_not_waited_for(server):
    waits: list[float] = []
    with pytest.raises(EndpointError, match=r"asks to wait 3600 s \(HTTP 429\), more than the 60 s"):
        chat(endpoint(server, "429-long"), MESSAGES, sleep=waits.append)
    assert waits == [] and FakeOpenAI.calls["429-long"] == 1


def test_401_says_the_key_was_refused_without_showing_it(server):
    bad = "sk-wrong-key-999999"
    e = Endpoint(base_url=f"{server}/ok/v1", model="m", api_key=bad)
    with pytest.raises(EndpointError, match=r"^the endpoint refused the key \(HTTP 401\)") as info:
        chat(e, MESSAGES)
    assert bad not in str(info.value) and "***" in str(info.value)
    assert FakeOpenAI.calls["ok"] == 1  # not retried
    assert bad not in repr(e)


def test_slow_reply_beyond_the_timeout(server):
    with pytest.raises(EndpointError, match=r"did not answer within 0.2 s"):
        chat(endpoint(server, "slow", timeout=0.2), MESSAGES)


def test_unreachable_host():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(EndpointError, match=rf"^cannot reach 127.0.0.1:{port}: "):
        chat(Endpoint(base_url=f"http://127.0.0.1:{port}/v1", model="m", api_key=KEY), MESSAGES)


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        ("not-json", r"^the reply of 127.0.0.1:\d+ is not JSON: «<html>Welcome to nginx!</html>»$"),
        ("no-choices", r"^the reply of 127.0.0.1:\d+ has no choices\[0\].message.content$"),
        (
            "bad-model",
            r"^no such endpoint or model at .* \(HTTP 404\): The model `judge-model` does not exist$",
        ),
        ("bad-request", r"^the endpoint rejected the request \(HTTP 400\): max_tokens is too large: 999999$"),
    ],
)
def test_one_line_errors(server, scenario, message):
    with pytest.raises(EndpointError, match=message) as info:
        chat(endpoint(server, scenario), MESSAGES)
    assert "\n" not in str(info.value)
    assert FakeOpenAI.calls[scenario] == 1


@pytest.mark.parametrize("url", ["localhost:8000/v1", "ftp://127.0.0.1/v1", "http://"])
def test_unusable_url(url):
    with pytest.raises(EndpointError, match="is not an endpoint URL"):
        chat(Endpoint(base_url=url, model="m", api_key=KEY), MESSAGES)


def test_401_without_a_key_says_none_is_set(server):
    with pytest.raises(EndpointError, match=r"^the endpoint needs a key and none is set \(HTTP 401\)"):
        chat(Endpoint(base_url=f"{server}/ok/v1", model="m"), MESSAGES)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"model": " "}, "needs a model name"),
        ({"temperature": 3.0}, "temperature must be between 0 and 2, not 3"),
        ({"max_retries": -1}, "max_retries at least 0"),
        ({"timeout": 0}, "timeout must be positive"),
    ],
)
def test_endpoint_settings_are_checked(kw, message):
    with pytest.raises(EndpointError, match=message):
        Endpoint(base_url="http://127.0.0.1:1/v1", **{"model": "m", **kw})
