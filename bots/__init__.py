"""No-code bot scenarios: format, engine and test runs; channel-agnostic (no channel code)."""
