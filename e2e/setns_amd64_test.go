package e2e

// sysSetns is setns(2)'s number on linux/amd64 (the syscall package names it on arm64 only).
const sysSetns = 308
