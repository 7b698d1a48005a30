"""Requests to V3IO that outlive a misbehaving platform: each is tried again, waiting longer each
time, while it gets no answer (a dropped connection, a timeout) or a transient one (throttled,
5xx), up to the driver's budget (`_retries`, `_backoff_secs`, `_request_timeout_secs`)."""

import asyncio

from ..dtypes.event import V3ioError

__all__ = ["TRANSIENT_STATUSES", "Unanswered", "answered", "check", "never_raise", "outcome", "with_retries"]

# statuses that say "not now": the request was not carried out and may be sent again
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})


class Unanswered(Exception):
    """A request that got no answer: it may or may not have been carried out."""


def _connection_errors():
    import aiohttp

    return (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError, OSError)


async def answered(call, timeout):
    """The response of `call()` (a coroutine function sending one request); `Unanswered` when
    no answer came within `timeout` seconds."""
    try:
        async with asyncio.timeout(timeout):
            return await call()
    except _connection_errors() as ex:
        reason = f"{type(ex).__name__}: {ex}" if str(ex) else type(ex).__name__
        raise Unanswered(f"no answer ({reason})") from ex


def body_text(response):
    body = getattr(response, "body", None)
    if isinstance(body, bytes):
        return body.decode("utf-8", "replace")
    return str(body)


def outcome(response):
    """A response's status and body, as errors name them."""
    return f"status {response.status_code}: {body_text(response)}"


def never_raise():
    """The client's `raise_for_status` setting that leaves every status to the caller."""
    from v3io.dataplane.transport import RaiseForStatus

    return RaiseForStatus.never


async def with_retries(driver, call, what):
    """The response of `call()` once it is neither unanswered nor transient (any other status is
    the caller's to judge); a `V3ioError` naming `what` when the budget runs out."""
    delay = driver._backoff_secs
    attempts = driver._retries + 1
    last = None
    for attempt in range(attempts):
        try:
            response = await answered(call, driver._request_timeout_secs)
        except Unanswered as ex:
            last = str(ex)
        else:
            if response.status_code not in TRANSIENT_STATUSES:
                return response
            last = outcome(response)
        if attempt + 1 < attempts:
            await asyncio.sleep(delay)
            delay *= 2
    raise V3ioError(f"{what}: {last} (tried {attempts} times)")


def check(response, what, accepted=(200, 204)):
    """Raises a V3ioError naming `what` unless the response's status is accepted."""
    if response.status_code not in accepted:
        raise V3ioError(f"{what}: {outcome(response)}")
    return response
