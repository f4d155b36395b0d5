"""Tickets and the door: one signed e-ticket per sold seat, its QR code, check-in at the gates."""
