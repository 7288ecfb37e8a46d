package main

// Egress: carry guest connections to 127.0.0.1:3128 to the host's gateway, one frame at a time.

import (
	"net"
	"sync"
	"syscall"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "paddock/agentpb"
)

type tunnel struct {
	mu     sync.Mutex
	conns  map[uint32]net.Conn
	out    chan *pb.EgressFrame
	stop   chan struct{}
	once   sync.Once
	listen net.Listener
}

func (t *tunnel) emit(f *pb.EgressFrame) bool {
	select {
	case t.out <- f:
		return true
	case <-t.stop:
		return false
	}
}

func (t *tunnel) close(id uint32) {
	t.mu.Lock()
	c := t.conns[id]
	delete(t.conns, id)
	t.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

func (t *tunnel) shutdown() {
	t.once.Do(func() {
		close(t.stop)
		t.listen.Close()
		t.mu.Lock()
		conns := t.conns
		t.conns = map[uint32]net.Conn{}
		t.mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
}

func (t *tunnel) readFrom(id uint32, c net.Conn) {
	for {
		buf := make([]byte, chunk)
		n, err := c.Read(buf)
		if n > 0 && !t.emit(&pb.EgressFrame{Conn: id, Kind: pb.EgressFrame_KIND_DATA, Data: buf[:n]}) {
			return
		}
		if err != nil {
			break
		}
	}
	t.emit(&pb.EgressFrame{Conn: id, Kind: pb.EgressFrame_KIND_CLOSE})
}

func (t *tunnel) acceptLoop() {
	next := uint32(1)
	for {
		c, err := t.listen.Accept()
		if err != nil {
			return
		}
		id := next
		next++
		t.mu.Lock()
		t.conns[id] = c
		t.mu.Unlock()
		if !t.emit(&pb.EgressFrame{Conn: id, Kind: pb.EgressFrame_KIND_OPEN}) {
			return
		}
		go t.readFrom(id, c)
	}
}

func (t *tunnel) fromHost(stream pb.GuestAgent_EgressServer) {
	defer t.shutdown()
	for {
		f, err := stream.Recv()
		if err != nil {
			return
		}
		switch f.Kind {
		case pb.EgressFrame_KIND_DATA:
			t.mu.Lock()
			c := t.conns[f.Conn]
			t.mu.Unlock()
			if c != nil {
				if _, err := c.Write(f.Data); err != nil {
					t.close(f.Conn)
				}
			}
		case pb.EgressFrame_KIND_CLOSE:
			t.close(f.Conn)
		}
	}
}

// Egress is the guest's only way out: one tunnel at a time, open until either side goes away.
func (a *Agent) Egress(stream pb.GuestAgent_EgressServer) error {
	if !tryLock(&a.egress) {
		return status.Error(codes.AlreadyExists, "an egress tunnel is already open")
	}
	defer a.egress.Unlock()
	lc := net.ListenConfig{Control: func(network, address string, c syscall.RawConn) error {
		var serr error
		c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1) })
		return serr
	}}
	listener, err := lc.Listen(stream.Context(), "tcp4", egressAddr)
	if err != nil {
		return statusFor(err)
	}
	t := &tunnel{conns: map[uint32]net.Conn{}, out: make(chan *pb.EgressFrame, 256), stop: make(chan struct{}), listen: listener}
	defer t.shutdown()
	go t.acceptLoop()
	go t.fromHost(stream)
	ctx := stream.Context()
	for {
		select {
		case f := <-t.out:
			if err := stream.Send(f); err != nil {
				return nil
			}
		case <-t.stop:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}
