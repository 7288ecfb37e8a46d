package main

// The GuestAgent service: thin methods over the files that do the work, and how a failure
// becomes a gRPC status (the host reads the code: app/paddock/guest/client.py).

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "paddock/agentpb"
)

type Agent struct {
	pb.UnimplementedGuestAgentServer
	hub      *EventHub
	keys     *KeyBox
	mu       sync.Mutex
	extraEnv map[string]string
	egress   sync.Mutex
}

func NewAgent() *Agent {
	return &Agent{hub: newHub(), keys: &KeyBox{}, extraEnv: map[string]string{}}
}

func (a *Agent) configuredEnv() map[string]string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.extraEnv
}

// strerror: the C library's words for an errno ("No such file or directory").
func strerror(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		s := errno.Error()
		if s != "" {
			return strings.ToUpper(s[:1]) + s[1:]
		}
	}
	return err.Error()
}

// statusFor turns a failure into the gRPC status the host maps to its own errors.
func statusFor(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	var jail *jailError
	if errors.As(err, &jail) {
		return status.Error(codes.InvalidArgument, jail.msg)
	}
	var plain *plainError
	if errors.As(err, &plain) {
		return status.Error(codeFor(plain.errno), plain.msg)
	}
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return status.Error(codes.Internal, err.Error())
	}
	filename := ""
	var pathErr *os.PathError
	var linkErr *os.LinkError
	if errors.As(err, &pathErr) {
		filename = pathErr.Path
	} else if errors.As(err, &linkErr) {
		filename = linkErr.Old
	}
	switch errno {
	case syscall.ENOENT:
		return status.Error(codes.NotFound, "not found: "+filename)
	case syscall.EEXIST:
		return status.Error(codes.AlreadyExists, "already exists: "+filename)
	case syscall.ENOSPC:
		return status.Error(codes.ResourceExhausted, "no space left on the device")
	case syscall.EROFS:
		return status.Error(codes.PermissionDenied, "read-only file system")
	}
	return status.Error(codeFor(errno), strerror(errno))
}

func codeFor(errno syscall.Errno) codes.Code {
	switch errno {
	case syscall.ENOENT:
		return codes.NotFound
	case syscall.EEXIST:
		return codes.AlreadyExists
	case syscall.EACCES, syscall.EPERM, syscall.EROFS:
		return codes.PermissionDenied
	case syscall.ENOSPC:
		return codes.ResourceExhausted
	}
	return codes.FailedPrecondition // EISDIR, ENOTDIR and every other errno
}

func (a *Agent) Claim(ctx context.Context, req *pb.ClaimRequest) (*pb.ClaimResponse, error) {
	if err := claim(req, a.keys); err != nil {
		return nil, err
	}
	watcher.ensure(a.hub) // the shared folder is mounted now: report what commands write
	return &pb.ClaimResponse{}, nil
}

func (a *Agent) Health(ctx context.Context, req *pb.HealthRequest) (*pb.HealthResponse, error) {
	return &pb.HealthResponse{Ready: true}, nil
}

func (a *Agent) Info(ctx context.Context, req *pb.InfoRequest) (*pb.InfoResponse, error) {
	var uts unix.Utsname
	unix.Uname(&uts)
	return &pb.InfoResponse{
		AgentVersion: AgentVersion,
		Kernel:       unix.ByteSliceToString(uts.Release[:]),
		UptimeS:      uptime(),
		Mounts:       virtiofsMounts(),
	}, nil
}

func (a *Agent) Exec(req *pb.ExecRequest, stream pb.GuestAgent_ExecServer) error {
	if len(req.Argv) == 0 {
		return status.Error(codes.InvalidArgument, "argv is empty")
	}
	cwd, err := resolveFollow(req.Cwd)
	if err != nil {
		return statusFor(err)
	}
	defer keeper.watching()() // the share daemon's open files, while the command runs
	return statusFor(a.runCommand(req, stream, cwd))
}

func (a *Agent) ReadFile(ctx context.Context, req *pb.ReadFileRequest) (*pb.ReadFileResponse, error) {
	r, err := readFile(req)
	return r, statusFor(err)
}

func (a *Agent) WriteFile(ctx context.Context, req *pb.WriteFileRequest) (*pb.WriteFileResponse, error) {
	r, err := writeFile(req, a.hub)
	return r, statusFor(err)
}

func (a *Agent) ListDir(ctx context.Context, req *pb.ListDirRequest) (*pb.ListDirResponse, error) {
	r, err := listDir(req)
	return r, statusFor(err)
}

func (a *Agent) Stat(ctx context.Context, req *pb.StatRequest) (*pb.StatResponse, error) {
	r, err := statPath(req)
	return r, statusFor(err)
}

func (a *Agent) Remove(ctx context.Context, req *pb.RemoveRequest) (*pb.RemoveResponse, error) {
	r, err := removePath(req, a.hub)
	return r, statusFor(err)
}

func (a *Agent) Configure(ctx context.Context, req *pb.ConfigureRequest) (*pb.ConfigureResponse, error) {
	if len(req.CaPem) > 0 {
		if err := installCA(req.CaPem); err != nil {
			return nil, statusFor(err)
		}
	}
	env := map[string]string{}
	for k, v := range req.Env {
		env[k] = v
	}
	a.mu.Lock()
	a.extraEnv = env
	a.mu.Unlock()
	return &pb.ConfigureResponse{}, nil
}

func (a *Agent) ForgetCached(ctx context.Context, req *pb.ForgetCachedRequest) (*pb.ForgetCachedResponse, error) {
	if err := dropCachedInodes(); err != nil {
		return nil, statusFor(err)
	}
	return &pb.ForgetCachedResponse{}, nil
}

func (a *Agent) Sync(ctx context.Context, req *pb.SyncRequest) (*pb.SyncResponse, error) {
	watcher.flush(a.hub) // what the watcher has queued goes out first
	return &pb.SyncResponse{Seq: a.hub.lastSeq()}, nil
}

func (a *Agent) Events(req *pb.EventsRequest, stream pb.GuestAgent_EventsServer) error {
	sub := a.hub.subscribe()
	defer a.hub.unsubscribe(sub)
	ctx := stream.Context()
	for {
		items, open := sub.take()
		if !open {
			return nil
		}
		for _, ev := range items {
			if err := stream.Send(ev); err != nil {
				return err
			}
		}
		if len(items) > 0 {
			continue
		}
		select {
		case <-sub.wake:
		case <-ctx.Done():
			return nil
		}
	}
}

// installCA puts the gateway's CA certificate where the guest's TLS clients look for it.
func installCA(pem []byte) error {
	if err := os.MkdirAll(filepath.Dir(caPath), 0o755); err != nil {
		return err
	}
	tmp := caPath + ".tmp"
	if err := os.WriteFile(tmp, pem, 0o644); err != nil {
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, caPath)
}

// tryLock: sync.Mutex.TryLock arrived in Go 1.18; kept as a function for the older toolchains' sake.
func tryLock(m *sync.Mutex) bool { return m.TryLock() }
