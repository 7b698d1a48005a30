"""The errors the V3IO web API answers with: an HTTP status and a JSON body
{"ErrorCode": <number>, "ErrorMessage": <text>}. The data services use negated errno numbers
(-2: no such file or directory); the streaming API names its errors (ResourceNotFoundException);
a condition that evaluates to false is error 16777244, which storey 1.0.6's driver recognizes."""

__all__ = ["PlatformError"]


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
    @classmethod
    def not_found(cls, what=""):
        return cls(404, -2, "No such file or directory" + (f": {what}" if what else ""))

    @classmethod
    def invalid(cls, detail):
        return cls(400, -22, f"Invalid argument: {detail}")

    @classmethod
    def false_condition(cls):
        return cls(400, 16777244, "Condition evaluated to false (the item was not changed)")

    @classmethod
    def permission_denied(cls):
        return cls(401, -1, "Permission denied: no access key (X-v3io-session-key or Authorization)")

    @classmethod
    def is_a_directory(cls, path):
        return cls(400, -21, f"Is a directory: {path}")

    @classmethod
    def not_a_directory(cls, path):
        return cls(400, -20, f"Not a directory: {path}")

    @classmethod
    def unsupported(cls, what):
        return cls(501, -95, f"Operation not supported by the V3IO emulator: {what}")

    # the streaming web API's
    @classmethod
    def stream_invalid(cls, detail):
        return cls(400, -201326592, f"InvalidArgumentException: {detail}")

    @classmethod
    def stream_not_found(cls, path):
        return cls(404, -201326593, f"ResourceNotFoundException: {path}")

    @classmethod
    def shard_out_of_range(cls, shard):
        return cls(400, -201326594, f"ShardIDOutOfRangeException: shard {shard}")

    @classmethod
    def stream_exists(cls, path):
        return cls(409, -201326595, f"ResourceInUseException: {path}")

    @classmethod
    def illegal_location(cls, detail):
        return cls(400, -201326596, f"IllegalLocation: {detail}")

    # what a fault makes the emulator answer
    @classmethod
    def busy(cls):
        return cls(503, -11, "Resource temporarily unavailable (throttled)")

    @classmethod
    def internal(cls):
        return cls(500, -5, "Internal server error")
