"""The errors the V3IO web API answers with: an HTTP status and a JSON body
{"ErrorCode": <number>, "ErrorMessage": <text>}. The data services use negated errno numbers
(-2: no such file or directory); the streaming API names its errors (ResourceNotFoundException);
a condition that evaluates to false is error 16777244, which storey 1.0.6's driver recognizes."""

__all__ = ["PlatformError"]


def _refusal(status, code, message):
    """A factory of PlatformErrors answering `status` and `code`, whose message is `message` with
    the factory's argument (a path, a detail) in place of its `{}`."""

    def refuse(cls, *detail):
        return cls(status, code, message.format(*detail))

    return classmethod(refuse)


class PlatformError(Exception):
    """A request the platform refuses: `status`, `code` and `message` make its answer."""

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self):
        return {"ErrorCode": self.code, "ErrorMessage": self.message}

    # ---- the errors the emulator gives
    not_found = _refusal(404, -2, "No such file or directory: {}")
    invalid = _refusal(400, -22, "Invalid argument: {}")
    false_condition = _refusal(400, 16777244, "Condition evaluated to false (the item was not changed)")
    permission_denied = _refusal(
        401, -1, "Permission denied: no access key (X-v3io-session-key or Authorization)"
    )
    is_a_directory = _refusal(400, -21, "Is a directory: {}")
    not_a_directory = _refusal(400, -20, "Not a directory: {}")
    unsupported = _refusal(501, -95, "Operation not supported by the V3IO emulator: {}")

    # the streaming web API's
    stream_invalid = _refusal(400, -201326592, "InvalidArgumentException: {}")
    stream_not_found = _refusal(404, -201326593, "ResourceNotFoundException: {}")
    shard_out_of_range = _refusal(400, -201326594, "ShardIDOutOfRangeException: shard {}")
    stream_exists = _refusal(409, -201326595, "ResourceInUseException: {}")
    illegal_location = _refusal(400, -201326596, "IllegalLocation: {}")

    # what a fault makes the emulator answer
    busy = _refusal(503, -11, "Resource temporarily unavailable (throttled)")
    internal = _refusal(500, -5, "Internal server error")
