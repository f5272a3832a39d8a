package entrypoint

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/konveyor/kai-entrypoint/internal/testio"
)

// TestWaitDeadlineCutsDial: a proxy refuses connections, then accepts TCP
// handshakes no more, so that the last dial hangs until the wait's deadline
// cuts it. The problem then says why the proxy failed before ("connection
// refused"), not "i/o timeout".
func TestWaitDeadlineCutsDial(t *testing.T) {
	// Bound but not listening, the socket refuses connections. Listening
	// with a backlog of 0 and one connection queued, it drops further SYNs.
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(sa.(*syscall.SockaddrInet4).Port)
	px, err := ParseProxy("KAI_PROXY_HTTPS", addr)
	if err != nil {
		t.Fatal(err)
	}

	// Dials at 0, 300 and 600 ms; the proxy stops answering at about 450 ms;
	// the deadline at 1 s cuts the third dial (its own timeout is 1 s).
	defer func(p time.Duration) { waitPoll = p }(waitPoll)
	waitPoll = 300 * time.Millisecond
	logged := &testio.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
	done := make(chan error, 1)
	go func() {
		_, err := waitFor(context.Background(), time.Second, nil, []Proxy{px}, log)
		done <- err
	}()
	for !strings.Contains(logged.String(), "still waiting") { // logged after the first, refused, dial
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(waitPoll / 2)
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	queued, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer queued.Close()

	err = <-done
	want := "KAI_WAIT=1s: still not ready: KAI_PROXY_HTTPS: proxy " + addr + " does not accept connections: connection refused"
	if err == nil || err.Error() != want {
		t.Errorf("waitFor: %v\nwant %s\nlog:\n%s", err, want, logged)
	}
}
