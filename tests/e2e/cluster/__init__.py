"""The cluster tests (a package, so its conftest does not shadow tests/e2e/conftest.py)."""
