package pgtest

import (
	"os/exec"
	"syscall"
)

// credential is the user a child process runs as.
type credential struct{ uid, gid uint32 }

// apply makes cmd run as c; a nil c leaves it as this process's user.
func (c *credential) apply(cmd *exec.Cmd) {
	if c == nil {
		return
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: c.uid, Gid: c.gid}
}

// dieWithParent has the kernel stop cmd (fast shutdown) when the test
// binary dies, so that a killed test leaves no server behind.
func (c *credential) dieWithParent(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Pdeathsig = syscall.SIGINT
}
