"""A stand-in for Intel's habana_frameworks, for tests: records calls in EVENTS, in order."""

EVENTS = []
