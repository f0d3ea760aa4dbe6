"""The consumer's exception tree.

    CaliError
    ├── ConfigError          bad or missing configuration (raised at start-up only)
    └── DeliveryError        a Slack post did not end in "delivered"
        ├── RetryableDelivery    429, 5xx, connection trouble: try again later
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
    pass


class PermanentDelivery(DeliveryError):
    pass
