"""Sync: ``client`` (HTTP, error tree, retries) and ``engine`` (push the outbox, pull the feed)."""
