package main

// Boot and claim: the host's first call after a boot or a snapshot restore, and the boot key
// that every later call must carry.

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "paddock/agentpb"
)

// KeyBox holds this boot's key, set once.
type KeyBox struct {
	mu  sync.Mutex
	key []byte
}

func (k *KeyBox) setOnce(key []byte) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.key != nil {
		return false
	}
	k.key = append([]byte(nil), key...)
	return true
}

func (k *KeyBox) check(presented string) bool {
	k.mu.Lock()
	key := k.key
	k.mu.Unlock()
	if key == nil || presented == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(hex.EncodeToString(key)), []byte(presented)) == 1
}

// openMethods need no key: Claim (which sets it) and Health.
var openMethods = map[string]bool{
	"/paddock.guest.v1.GuestAgent/Claim":  true,
	"/paddock.guest.v1.GuestAgent/Health": true,
}

var errBootKey = status.Error(codes.Unauthenticated, "missing or wrong boot key")

func (k *KeyBox) allowed(ctx context.Context, method string) bool {
	if openMethods[method] {
		return true
	}
	md, _ := metadata.FromIncomingContext(ctx)
	values := md.Get(bootKeyMetadata)
	return len(values) == 1 && k.check(values[0])
}

func (k *KeyBox) unary(ctx context.Context, req interface{}, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (interface{}, error) {
	if !k.allowed(ctx, info.FullMethod) {
		return nil, errBootKey
	}
	return handler(ctx, req)
}

func (k *KeyBox) stream(srv interface{}, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if !k.allowed(ss.Context(), info.FullMethod) {
		return errBootKey
	}
	return handler(srv, ss)
}

// claim takes this boot's key (once), sets the clock, reseeds the random pool, mounts the shares.
func claim(req *pb.ClaimRequest, keys *KeyBox) error {
	if len(req.BootKey) < 16 {
		return status.Error(codes.InvalidArgument, "boot key too short")
	}
	if !keys.setOnce(req.BootKey) {
		return status.Error(codes.PermissionDenied, "this boot is already claimed")
	}
	if req.UnixTimeNs > 0 {
		tv := unix.NsecToTimeval(req.UnixTimeNs)
		if err := unix.Settimeofday(&tv); err != nil {
			logf("could not set the clock: %v", err)
		}
	}
	if len(req.Entropy) > 0 {
		entropy := req.Entropy
		if len(entropy) > 4096 {
			entropy = entropy[:4096]
		}
		if err := reseedRandom(entropy); err != nil { // fail closed: no guest with a shared random state
			return status.Errorf(codes.FailedPrecondition, "could not reseed the random pool: %v", err)
		}
	}
	keeper.configure(int(req.ShareHandles))
	for _, tag := range req.MountTags {
		if _, ok := shareMounts[tag]; !ok {
			return status.Errorf(codes.InvalidArgument, "unknown share %q", tag)
		}
		if problem := mountShare(tag); problem != "" {
			return status.Error(codes.FailedPrecondition, problem)
		}
	}
	return nil
}

// reseedRandom mixes the host's bytes into the pool and reseeds the kernel's CRNG at once: every
// guest woken from one snapshot starts with the same CRNG state, and a plain write only feeds
// the input pool.
func reseedRandom(entropy []byte) error {
	f, err := os.OpenFile("/dev/urandom", os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Write(entropy); err != nil {
		return err
	}
	return unix.IoctlSetInt(int(f.Fd()), unix.RNDRESEEDCRNG, 0)
}

func mounted(tag, path string) bool {
	data, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == tag && f[1] == path && f[2] == "virtiofs" {
			return true
		}
	}
	return false
}

// mountShare mounts a hot-plugged virtiofs share at its fixed place, waiting for the device to
// appear. Returns "" when mounted, else why not.
func mountShare(tag string) string {
	share := shareMounts[tag]
	options := "nosuid,nodev"
	if share.readOnly {
		options = "ro,nosuid,nodev"
	}
	deadline := time.Now().Add(mountWait)
	last := ""
	for time.Now().Before(deadline) {
		if mounted(tag, share.path) {
			return ""
		}
		out, err := exec.Command(busyboxPath, "mount", "-t", "virtiofs", "-o", options, tag, share.path).CombinedOutput()
		if err == nil {
			logf("mounted %s at %s (guest uptime %.2f s)", tag, share.path, uptime())
			return ""
		}
		last = strings.TrimSpace(string(out))
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Sprintf("the %s share did not appear within %.0f s (%s)", tag, mountWait.Seconds(), last)
}

// virtiofsMounts: the shares mounted now, as Info reports them.
func virtiofsMounts() []*pb.Mount {
	var mounts []*pb.Mount
	data, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[2] == "virtiofs" {
			ro := false
			for _, o := range strings.Split(f[3], ",") {
				ro = ro || o == "ro"
			}
			mounts = append(mounts, &pb.Mount{Tag: f[0], Path: f[1], ReadOnly: ro})
		}
	}
	return mounts
}
