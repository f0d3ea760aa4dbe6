"""CALI consumer: Kinesis records (via the KCL MultiLangDaemon) -> ERROR/WARN alerts -> Slack."""
