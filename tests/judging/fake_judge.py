"""A real OpenAI-compatible HTTP server in a thread, answering judge prompts with canned replies.

The reply depends on the prompt: the case is found by its question ("question <i>?", as
tests/rating/conftest.make_jobs writes them) and the order by which answer the prompt shows first.
Pairwise, by i % 4: 0 prefers A in both orders, 1 always prefers whichever answer is shown first (a
position-biased judge), 2 calls a tie, 3 prefers B. Case 2's reply has no scores at all (unparsable);
the first request for case 3 in each order is answered 429, the next 200. Every request is logged.
Absolute replies score every AlignBench dimension 1 + i % 10, unless `absolute` says otherwise (a rubric's
scores, say).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DIMS = ("factuality", "user_satisfaction", "clarity", "completeness", "logical_coherence", "creativity",
        "richness", "fairness_responsibility")  # fmt: skip
UNPARSABLE = 2
RATE_LIMITED = 3
KEY = "sk-test-0123456789abcdefSECRET"


def scores(value: int) -> dict[str, int]:
    return {d: value for d in DIMS}


@dataclass
class Request:
    case: int
    first: str  # "A" or "B": the answer shown first ("A" for absolute prompts)
    status: int
    auth: str
    at: float


def alignbench_scores(i: int) -> dict[str, int]:
    return scores(1 + i % 10)


@dataclass
class FakeJudge:
    delay: float = 0.0
    absolute: Callable[[int], dict[str, Any]] = alignbench_scores
    requests: list[Request] = field(default_factory=list)
    limited: set[tuple[int, str]] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reply(self, prompt: str) -> tuple[int, str, int, str]:
        """(case, answer shown first, status, reply text) for one prompt."""
        m = re.search(r"question (\d+)\?", prompt)
        i = int(m.group(1)) if m else -1
        a, b = prompt.find("answer A "), prompt.find("answer B ")
        first = "B" if b != -1 and (a == -1 or b < a) else "A"
        pairwise = b != -1
        with self.lock:
            if i == RATE_LIMITED and (i, first) not in self.limited:
                self.limited.add((i, first))
                return i, first, 429, ""
        if i == UNPARSABLE:
            return i, first, 200, "Both answers look fine to me, I would not want to choose."
        if not pairwise:
            body = json.dumps(self.absolute(i), ensure_ascii=False)
            return i, first, 200, f"Case {i} is judged.\n```json\n{body}\n```"
        rule = i % 4
        verdict = {0: "1" if first == "A" else "2", 1: "1", 2: "tie", 3: "2" if first == "A" else "1"}[rule]
        # A scored 8 when shown first and 7 when second; B 4 first, 5 second: means 7.5 -> 8 and 4.5 -> 5.
        one, two = (scores(8), scores(5)) if first == "A" else (scores(4), scores(7))
        body = {"answer_1": one, "answer_2": two, "verdict": verdict}
        return i, first, 200, f"Answer 1 and answer 2 compared for case {i}.\n" + json.dumps(body)

    def handler(self) -> type[BaseHTTPRequestHandler]:
        judge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return None

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                payload = json.loads(self.rfile.read(length))
                prompt = payload["messages"][-1]["content"]
                if judge.delay:
                    time.sleep(judge.delay)
                case, first, status, text = judge.reply(prompt)
                with judge.lock:
                    judge.requests.append(
                        Request(case, first, status, self.headers.get("authorization", ""), time.monotonic())
                    )
                if self.headers.get("authorization") != f"Bearer {KEY}":
                    # As OpenAI does: the wrong key quoted back in the error.
                    wrong = self.headers.get("authorization", "")[7:]
                    status, body = (
                        401,
                        json.dumps({"error": {"message": f"Incorrect API key: {wrong}"}}).encode(),
                    )
                    self.send_response(401)
                elif status == 429:
                    body = json.dumps({"error": {"message": "slow down"}}).encode()
                    self.send_response(429)
                    self.send_header("Retry-After", "0")
                else:
                    body = json.dumps(
                        {"model": payload["model"], "choices": [{"message": {"role": "assistant", "content": text},
                         "finish_reason": "stop"}], "usage": {"prompt_tokens": 10, "completion_tokens": 5}}
                    ).encode()  # fmt: skip
                    self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler


class Server:
    """The fake judge on a free local port; `url` is the API root a judge configuration takes."""

    def __init__(self, judge: FakeJudge):
        self.judge = judge
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), judge.handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
