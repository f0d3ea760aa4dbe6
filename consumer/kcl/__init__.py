"""The thin adapter between amazon-kclpy's RecordProcessor protocol and the alerter."""
