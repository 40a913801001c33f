"""The Harbor-facing HTTP API (Harbor Pluggable Scanner API v1.2)."""
