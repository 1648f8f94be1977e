"""Reports -> output: JSON and plain text for scripts, tables and pictures for people."""
