"""Test configuration: the fixtures come from aiorpatterns' own pytest plugin (real servers)."""
