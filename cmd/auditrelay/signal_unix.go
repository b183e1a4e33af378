//go:build unix

package main

import (
	"os/signal"
	"syscall"
)

// ignoreFileSizeSignal makes a file-size limit (RLIMIT_FSIZE) surface as a
// write error that the runners retry without moving a checkpoint, instead
// of SIGXFSZ killing the process.
func ignoreFileSizeSignal() { signal.Ignore(syscall.SIGXFSZ) }
