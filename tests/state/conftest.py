"""State tests: a real PostgreSQL on loopback (session-scoped), and a fresh database per test."""

from tests.support.postgres import pg_url, postgres

__all__ = ["pg_url", "postgres"]
