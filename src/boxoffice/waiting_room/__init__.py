"""The waiting room: queue per show, admission, admission tokens."""
