"""The consumer's exception tree.

    CaliError
    ├── ConfigError          bad or missing configuration (raised at start-up only)
    └── DeliveryError        a Slack post did not end in "delivered"
        ├── RetryableDelivery    429, 5xx, connection trouble: try again later (``uncertain``: Slack may have
        │                        posted it: no answer, a reset after sending, a 5xx)
        └── PermanentDelivery    other 4xx: retrying cannot help; counted and logged

Bad input is not an exception here: the parse stage returns a ``Dropped`` value with a reason.
"""


class CaliError(Exception):
    pass


class ConfigError(CaliError):
    pass


class DeliveryError(CaliError):
    def __init__(self, status: int | None, reason: str) -> None:
        super().__init__(f"slack answered {status}: {reason}")
        self.status = status
        self.reason = reason


class RetryableDelivery(DeliveryError):
    def __init__(self, status: int | None, reason: str, *, uncertain: bool = False) -> None:
        super().__init__(status, reason)
        self.uncertain = uncertain


class PermanentDelivery(DeliveryError):
    pass
