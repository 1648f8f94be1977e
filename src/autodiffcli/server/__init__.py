"""The warm server: the stdlib-only client and protocol, the daemon, its workers, its commands."""
