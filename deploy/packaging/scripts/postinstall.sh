#!/bin/sh
# {{.Package}} after install and upgrade (deb postinst, rpm %post): the system user,
# {{if .Udev}}the udev rules, {{end}}systemd. An upgrade restarts a running service; a first
# install does not start it: configure /etc/fleetwatt/{{.Config}} first, then
# systemctl enable --now {{.Unit}}
set -e

if command -v systemd-sysusers >/dev/null 2>&1; then
	systemd-sysusers /usr/lib/sysusers.d/{{.Package}}.conf
elif ! getent passwd {{.User}} >/dev/null; then
	# The same user as the sysusers.d file, where systemd-sysusers is missing.
	if command -v useradd >/dev/null 2>&1; then
		getent group {{.User}} >/dev/null || groupadd --system {{.User}}
		useradd --system --gid {{.User}} --home-dir /var/lib/{{.Package}} --no-create-home \
			--shell /usr/sbin/nologin --comment "{{.Comment}}" {{.User}}
	else
		getent group {{.User}} >/dev/null || addgroup --system {{.User}}
		adduser --system --ingroup {{.User}} --home /var/lib/{{.Package}} --no-create-home \
			--shell /usr/sbin/nologin --gecos "{{.Comment}}" {{.User}}
	fi
fi
{{- if .Udev}}

# Apply the udev rules now, not at the next boot: group {{.User}} may read the energy counters.
if [ -S /run/udev/control ] && command -v udevadm >/dev/null 2>&1; then
	udevadm control --reload || true
	udevadm trigger --subsystem-match=powercap --subsystem-match=hwmon || true
fi
{{- end}}

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
	systemctl try-restart {{.Unit}} || true
fi
exit 0
