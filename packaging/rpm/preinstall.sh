#!/bin/sh
# %pre of cyberdbd (rpm): the user and group, before the files that name
# them are unpacked ($1: 1 on install, 2 on upgrade).
if command -v systemd-sysusers >/dev/null 2>&1; then
	# What %sysusers_create_compat does: the snippet is not on disk yet.
	echo 'u cyberdb - "cyberdb in-memory database" /var/lib/cyberdb /usr/sbin/nologin' |
		systemd-sysusers --replace=/usr/lib/sysusers.d/cyberdbd.conf - || :
else
	getent group cyberdb >/dev/null || groupadd --system cyberdb
	getent passwd cyberdb >/dev/null || useradd --system --gid cyberdb \
		--home-dir /var/lib/cyberdb --no-create-home --shell /sbin/nologin \
		--comment "cyberdb in-memory database" cyberdb
fi
exit 0
