"""A synchronous client for an OpenAI-compatible `/v1/chat/completions` endpoint, for the judge.

Synchronous because it runs inside a worker job, one case after another. Rate limits (429) and server
errors (5xx) are what a judge run meets over hours, so those are retried with exponential backoff,
waiting what the server's `Retry-After` asks when it says, and a bounded number of times so a dead
endpoint fails the job instead of holding it. Every other failure is one line that says what to fix
(the key, the URL, the model), and no message ever contains the key.
"""

import email.utils
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

log = logging.getLogger(__name__)


class EndpointError(RuntimeError):
    """The endpoint gave no usable reply; the message is one line meant for the researcher."""


@dataclass(frozen=True)
class Endpoint:
    """Where and how to ask. `base_url` is the API root as OpenAI clients take it ("https://host/v1");
    a URL already ending in /chat/completions is used as it is."""

    base_url: str
    model: str
    api_key: str = field(default="", repr=False)
    temperature: float = 0.0
    max_tokens: int = 2048
    timeout: float = 120.0
    max_retries: int = 4
    backoff: float = 1.0
    max_wait: float = 60.0

    def __post_init__(self) -> None:
        # Checked here, when a researcher saves the endpoint, not on the first case of a long job.
        if not self.model.strip():
            raise EndpointError("the endpoint needs a model name")
        if not 0 <= self.temperature <= 2:
            raise EndpointError(f"temperature must be between 0 and 2, not {self.temperature:g}")
        if self.max_tokens < 1 or self.timeout <= 0 or self.max_retries < 0:
            raise EndpointError("max_tokens and timeout must be positive, max_retries at least 0")

    @property
    def url(self) -> str:
        base = self.base_url.rstrip("/")
        return base if base.endswith("/chat/completions") else f"{base}/chat/completions"

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).netloc or self.base_url


@dataclass(frozen=True)
class Completion:
    """The judge's reply and what it cost; token counts are None when the server does not report them."""

    text: str
    model: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None


def _server_message(response: httpx.Response, endpoint: Endpoint) -> str:
    """The server's own error message, shortened; a key it echoes back ("Incorrect API key: sk-…") is
    masked, since this line is shown and logged."""
    try:
        body = response.json()
    except ValueError:
        body = None
    error = body.get("error") if isinstance(body, dict) else None
    message = error.get("message") if isinstance(error, dict) else error if isinstance(error, str) else None
    text = str(message) if message else response.text
    text = " ".join(text.split())
    if endpoint.api_key:
        text = text.replace(endpoint.api_key, "***")
    return text[:200] + ("…" if len(text) > 200 else "")


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds the server asks to wait: `Retry-After` as a number or an HTTP date; None when absent."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _completion(response: httpx.Response, endpoint: Endpoint) -> Completion:
    try:
        body = response.json()
    except ValueError:
        excerpt = " ".join(response.text.split())[:120]
        raise EndpointError(f"the reply of {endpoint.host} is not JSON: «{excerpt}»") from None
    choices = body.get("choices") if isinstance(body, dict) else None
    first = choices[0] if isinstance(choices, list) and choices else None
    message = first.get("message") if isinstance(first, dict) else None
    content = message.get("content") if isinstance(message, dict) else None
    if not isinstance(content, str):
        raise EndpointError(f"the reply of {endpoint.host} has no choices[0].message.content")
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    return Completion(
        text=content,
        model=str(body.get("model") or endpoint.model),
        finish_reason=first.get("finish_reason") if isinstance(first, dict) else None,
        prompt_tokens=_int_or_none(usage.get("prompt_tokens")),
        completion_tokens=_int_or_none(usage.get("completion_tokens")),
        total_tokens=_int_or_none(usage.get("total_tokens")),
    )


def _refusal(response: httpx.Response, endpoint: Endpoint) -> EndpointError:
    status = response.status_code
    detail = _server_message(response, endpoint)
    if status in (401, 403) and not endpoint.api_key:
        return EndpointError(f"the endpoint needs a key and none is set (HTTP {status}): {detail}")
    if status in (401, 403):
        return EndpointError(f"the endpoint refused the key (HTTP {status}): {detail}")
    if status == 404:
        return EndpointError(f"no such endpoint or model at {endpoint.url} (HTTP 404): {detail}")
    return EndpointError(f"the endpoint rejected the request (HTTP {status}): {detail}")


def chat(
    endpoint: Endpoint,
    messages: Sequence[dict[str, str]],
    *,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Completion:
    """One chat completion, with retries on 429 and 5xx; EndpointError with one line otherwise.

    Waits `Retry-After` when the server sends it, else backoff·2^attempt up to `max_wait`; a server asking for more
    than `max_wait` seconds is not waited for. `client` lets a job reuse one connection pool for
    many cases; `sleep` lets tests see the waits without spending them.
    """
    payload = {
        "model": endpoint.model,
        "messages": list(messages),
        "temperature": endpoint.temperature,
        "max_tokens": endpoint.max_tokens,
    }
    headers = {"Authorization": f"Bearer {endpoint.api_key}"} if endpoint.api_key else {}
    own = client is None
    http = client or httpx.Client()
    try:
        for attempt in range(endpoint.max_retries + 1):
            try:
                response = http.post(endpoint.url, json=payload, headers=headers, timeout=endpoint.timeout)
            except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
                raise EndpointError(f"{endpoint.base_url!r} is not an endpoint URL: {exc}") from None
            except httpx.TimeoutException:
                raise EndpointError(
                    f"{endpoint.host} did not answer within {endpoint.timeout:g} s (raise the timeout?)"
                ) from None
            except httpx.TransportError as exc:
                reason = " ".join(str(exc).split()) or type(exc).__name__
                raise EndpointError(f"cannot reach {endpoint.host}: {reason}") from None
            status = response.status_code
            if status < 300:
                return _completion(response, endpoint)
            if status != 429 and status < 500:
                raise _refusal(response, endpoint)
            if attempt == endpoint.max_retries:
                break
            asked = _retry_after(response)
            wait = asked if asked is not None else min(endpoint.backoff * 2**attempt, endpoint.max_wait)
            if wait > endpoint.max_wait:
                raise EndpointError(
                    f"the endpoint asks to wait {wait:.0f} s (HTTP {status}), more than the {endpoint.max_wait:g} s "
                    "a judge waits: try later"
                )
            log.info("judge endpoint %s answered %s; retrying in %.1f s", endpoint.host, status, wait)
            sleep(wait)
        tries = endpoint.max_retries + 1
        kind = "rate-limited" if status == 429 else "failing"
        raise EndpointError(
            f"the endpoint is still {kind} after {tries} tries (HTTP {status}): {_server_message(response, endpoint)}"
        )
    finally:
        if own:
            http.close()
