package e2e

// sysSetns is setns(2)'s number on linux/arm64.
const sysSetns = 268
