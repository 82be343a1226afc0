#!/bin/sh
# {{.Package}} before removal (deb prerm, rpm %preun): stop and disable the service when the
# package goes away, not when it is upgraded (deb "upgrade", rpm 1).
set -e

case "$1" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		systemctl disable --now {{.Unit}} || true
	fi
	;;
esac
exit 0
