"""HTTP API served by the daemon."""

from vidwatch.api.app import create_app
from vidwatch.api.server import ApiServer, readiness_checks

__all__ = ["ApiServer", "create_app", "readiness_checks"]
