#!/bin/sh
# %preun of cyberdbd (rpm): on erase ($1 = 0) disable and stop the units, as
# %systemd_preun does. Not on upgrade: the socket stays open.
if [ "$1" -eq 0 ] && command -v systemctl >/dev/null 2>&1; then
	systemctl --no-reload disable --now cyberdbd.socket cyberdbd-tcp.socket cyberdbd-metrics.socket cyberdbd.service >/dev/null 2>&1 || :
fi
exit 0
