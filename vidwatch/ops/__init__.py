"""Running vidwatch as a service: sd_notify, systemd units, doctor, status."""

from vidwatch.ops.notify import Notifier
from vidwatch.ops.service import ServiceNotifier

__all__ = ["Notifier", "ServiceNotifier"]
