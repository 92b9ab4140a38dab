package export

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// TCP states of the kernel (include/net/tcp_states.h).
const (
	tcpEstablished = 1
	tcpCloseWait   = 8
)

// waitAcked returns once the peer's TCP stack has acknowledged every byte
// written on conn: the send queue (SIOCOUTQ: bytes not yet sent or not yet
// acknowledged) is empty while the connection is still established. A reset
// also empties the queue, which is why the state is checked too. It gives up
// with an error at ctx's end or after timeout.
func waitAcked(ctx context.Context, conn *net.TCPConn, timeout time.Duration) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	pause := time.Millisecond
	for {
		var outq int
		var state uint8
		var serr error
		if err := rc.Control(func(fd uintptr) {
			if outq, serr = unix.IoctlGetInt(int(fd), unix.SIOCOUTQ); serr != nil {
				return
			}
			var info *unix.TCPInfo
			if info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); serr == nil {
				state = info.State
			}
		}); err != nil {
			return err
		}
		if serr != nil {
			return fmt.Errorf("reading the socket's send queue: %w", serr)
		}
		if state != tcpEstablished && state != tcpCloseWait {
			return errors.New("connection closed before the receiver acknowledged the batch")
		}
		if outq == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("receiver did not acknowledge %d bytes within %s", outq, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, 50*time.Millisecond)
	}
}
