"""Venues, concerts, shows, seats, inventory and the cached seat map."""
