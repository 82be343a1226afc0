#!/bin/sh
# {{.Package}} after removal (deb postrm, rpm %postun). The user stays (files it owned may
# remain); a deb purge also deletes /var/lib/{{.Package}}: {{.State}}, data not yet sent included.
set -e

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
{{- if .Udev}}
if [ -S /run/udev/control ] && command -v udevadm >/dev/null 2>&1; then
	udevadm control --reload || true
fi
{{- end}}
case "$1" in
purge)
	rm -rf /var/lib/{{.Package}}
	;;
esac
exit 0
