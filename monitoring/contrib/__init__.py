"""Integrations with third-party packages, each importable only with its extra installed."""
