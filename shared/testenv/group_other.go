//go:build unix && !linux

package testenv

import (
	"errors"
	"syscall"
)

// groupAlive reports whether process group pgid has a process left. Unlike
// the Linux version it counts zombies, which init reaps promptly on these
// systems.
func groupAlive(pgid int) bool {
	return !errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH)
}
