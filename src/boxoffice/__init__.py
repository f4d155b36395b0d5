"""Boxoffice: flash-sale concert ticketing."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("boxoffice")
except PackageNotFoundError:  # imported from a checkout that was never installed
    __version__ = "0.0.0+unknown"
