"""Shared test helpers: free ports, a server with a start deadline, polling, shows."""
