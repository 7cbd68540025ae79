#!/bin/sh
# %postun of cyberdbd (rpm): after an upgrade ($1 >= 1) restart a running
# daemon on the new binary, as %systemd_postun_with_restart does; clients
# wait in the socket's backlog meanwhile. The user and /var/lib/cyberdb stay.
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || :
	if [ "$1" -ge 1 ]; then
		systemctl try-restart cyberdbd.service >/dev/null 2>&1 || :
	fi
fi
exit 0
