"""The public per-event object, and the errors a flow raises."""

from datetime import UTC, datetime

# What a step written against storey 1.0.6 receives in `_do(event)`, and passes on with
# `_do_downstream`, when its flow terminates.
_termination_obj = object()


class FlowError(Exception):
    """Raised when a flow cannot carry out what it was asked to do."""


class V3ioError(Exception):
    """Raised when a request to V3IO fails."""


def parse_event_time(time):
    """The time an `Event` holds for `time`, as the `Event` constructor accepts it."""
    if time is None:
        return datetime.now(UTC)
    if isinstance(time, datetime):
        return time
    if isinstance(time, str):
        return datetime.fromisoformat(time)
    if isinstance(time, int):  # bools included, as in the reference
        return datetime.fromtimestamp(time, UTC).replace(tzinfo=None)
    raise TypeError(f"Event time parameter must be a datetime, string, or int. Got {type(time)} instead.")


class Event:
    """The basic unit of data in storey. All steps receive and emit events.

    A flow moves events in columnar batches internally; an `Event` is what user functions see when
    they ask for the full event (`full_event=True`), and what `emit()` accepts to set metadata.

    :param body: the event payload, or data
    :param key: event key, used by steps that aggregate events by key. Can be a list.
    :param time: event time: a datetime, an ISO-8601 string, or epoch seconds as an int.
        Defaults to the time the event was created, UTC.
    :param id: event identifier
    :param headers: request headers (HTTP only)
    :param method: request method (HTTP only)
    :param path: request path (HTTP only)
    :param content_type: request content type (HTTP only)
    :param awaitable_result: generally not passed directly
    """

    def __init__(
        self,
        body,
        key=None,
        time=None,
        id=None,
        headers=None,
        method=None,
        path="/",
        content_type=None,
        awaitable_result=None,
    ):
        self.body = body
        self.key = key
        self.time = parse_event_time(time)
        self.id = id
        self.headers = headers
        self.method = method
        self.path = path
        self.content_type = content_type
        self._awaitable_result = awaitable_result
        self.error = None

    def __eq__(self, other):
        if not isinstance(other, Event):
            return False
        return (
            self.body == other.body
            and self.time == other.time
            and self.id == other.id
            and self.headers == other.headers
            and self.method == other.method
            and self.path == other.path
            and self.content_type == other.content_type
        )

    __hash__ = None

    def __str__(self):
        return f"Event(id={self.id}, key={self.key}, time={self.time}, body={self.body})"

    def __repr__(self):
        return self.__str__()
