"""The alerts capability: `alerts_list` (read) and `alert_silence` (a bounded, gated write)."""
