"""systemd's notify protocol: one datagram per message to ``$NOTIFY_SOCKET``.

A few lines instead of a dependency: ``READY=1`` once the daemon serves,
``WATCHDOG=1`` pings when the unit sets ``WatchdogSec``, ``STATUS=`` lines for
``systemctl status``, ``STOPPING=1`` on the way out. Outside systemd (no
``NOTIFY_SOCKET``) every call does nothing.
"""

from __future__ import annotations

import os
import socket


class Notifier:
    """Sends notify messages to the socket systemd named, if any."""

    def __init__(self, address: str | None = None) -> None:
        self.address = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        if self.address and self.address.startswith("@"):
            self.address = "\0" + self.address[1:]  # the abstract namespace

    @property
    def enabled(self) -> bool:
        """True when running under a service manager that listens."""
        return bool(self.address)

    def send(self, *lines: str) -> None:
        """Send ``KEY=value`` lines as one message; errors are ignored (a lost
        status line must never stop the daemon)."""
        if not self.address:
            return
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            try:
                sock.connect(self.address)
                sock.sendall("\n".join(lines).encode())
            except OSError:
                pass

    def ready(self, status: str) -> None:
        """The daemon is up."""
        self.send("READY=1", f"STATUS={status}", f"MAINPID={os.getpid()}")

    def status(self, status: str) -> None:
        """A one-line status for ``systemctl status``."""
        self.send(f"STATUS={status}")

    def watchdog(self) -> None:
        """Still alive."""
        self.send("WATCHDOG=1")

    def reloading(self) -> None:
        """Reloading the configuration."""
        self.send("RELOADING=1")

    def stopping(self) -> None:
        """On the way out."""
        self.send("STOPPING=1", "STATUS=stopping")


def watchdog_interval() -> float | None:
    """Seconds between watchdog pings (half the unit's ``WatchdogSec``), or None.
    ``WATCHDOG_PID``, when set, must be this process."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return max(int(usec) / 2_000_000, 0.5)
    except ValueError:
        return None
