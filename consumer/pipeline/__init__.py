"""Pure stages: decode -> parse -> filter -> throttle -> render. No I/O in here."""
