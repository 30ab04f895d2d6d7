"""Helpers for connector authors, ours and third parties': listing cursors, durable
file writes, bulk SQL, JSON text, secret settings and database URLs."""
