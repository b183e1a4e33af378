//go:build !linux

package pgtest

import "os/exec"

// credential is the user a child process runs as; off Linux the tests
// start PostgreSQL only when not running as root.
type credential struct{ uid, gid uint32 }

func (c *credential) apply(cmd *exec.Cmd) {}

func (c *credential) dieWithParent(cmd *exec.Cmd) {}
