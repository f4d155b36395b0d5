"""boxoffice bench: flash-sale simulator and report."""
