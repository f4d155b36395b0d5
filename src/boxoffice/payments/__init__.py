"""Payments: balance ledger, card provider, refunds."""
