#!/bin/sh
# %post of cyberdbd (rpm): directories, then what %systemd_post does: on a
# first install apply the distribution's preset to the socket (Fedora and
# RHEL leave services off unless a preset enables them: then run
# "systemctl enable --now cyberdbd.socket").
if command -v systemd-tmpfiles >/dev/null 2>&1; then
	systemd-tmpfiles --create cyberdbd.conf >/dev/null 2>&1 || :
fi
if [ "$1" -eq 1 ] && command -v systemctl >/dev/null 2>&1; then
	systemctl --no-reload preset cyberdbd.socket >/dev/null 2>&1 || :
fi
exit 0
