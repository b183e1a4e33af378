//go:build !linux

package syslog

import "net"

// unsent reports false: only Linux tells how much of a socket's output
// the peer has not acknowledged.
func unsent(net.Conn) (int, bool) { return 0, false }
