"""``syncd run``: the service lifecycle (:mod:`~syncd.daemon.service`), the schedule of
pairs (:mod:`~syncd.daemon.scheduler`) and systemd's notify protocol
(:mod:`~syncd.daemon.notify`)."""
