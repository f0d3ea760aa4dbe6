"""Realistic application-log generator: records, Fluent Bit's Kinesis bytes, and outputs (stdout, Kinesis)."""

from .fluentbit import RecordDiscarded, escape_string, fluent_bit_json, fluent_bit_record, partition_key
from .lines import DEFAULT_SERVICES, LEVELS, LogLineFactory, LogRecord, format_timestamp, make_line, utc_now
from .outputs import KinesisOutput, KinesisStats, Output, PutRecordsClient, StdoutOutput

__all__ = [
    "DEFAULT_SERVICES",
    "LEVELS",
    "KinesisOutput",
    "KinesisStats",
    "LogLineFactory",
    "LogRecord",
    "Output",
    "PutRecordsClient",
    "RecordDiscarded",
    "StdoutOutput",
    "escape_string",
    "fluent_bit_json",
    "fluent_bit_record",
    "format_timestamp",
    "make_line",
    "partition_key",
    "utc_now",
]
