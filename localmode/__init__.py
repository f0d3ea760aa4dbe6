"""Local mode: CALI's whole pipeline on one machine without Docker (emulator, daemon, generator, receiver)."""
