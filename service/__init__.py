"""Harbor pluggable scanner adapter backed by Sysdig Secure."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("harbor-scanner-sysdig")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
