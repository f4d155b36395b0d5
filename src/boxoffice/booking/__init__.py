"""Seat holds, reservations, expiry."""
