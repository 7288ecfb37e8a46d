package main

// The agent's own tests, run by the image build (build.sh) in the guest suite's build root:
// the path jail (the property the host's fuzz test checked on the Python agent), the status
// codes the host reads, the event hub's order, and the service over a real gRPC server on a
// unix socket (boot key, claim, the file calls). Exec, the watcher and egress need the guest
// (paddock-runas, a virtiofs mount): tests/vm covers them on a real VM.

import (
	"context"
	"math/rand"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "paddock/agentpb"
)

// newWorkspace makes a workspace with links that point inside, outside and up.
func newWorkspace(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	ws := filepath.Join(dir, "ws")
	must(t, os.MkdirAll(filepath.Join(ws, "sub"), 0o755))
	must(t, os.Symlink("../sub", filepath.Join(ws, "sub", "in")))
	must(t, os.Symlink("/etc", filepath.Join(ws, "out")))
	must(t, os.Symlink("..", filepath.Join(ws, "up")))
	must(t, os.Symlink("loop", filepath.Join(ws, "loop")))
	must(t, os.WriteFile(filepath.Join(dir, "secret"), []byte("x"), 0o644))
	old := workspace
	workspace = ws
	t.Cleanup(func() { workspace = old })
	return ws
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestPathsNeverLeaveTheWorkspace(t *testing.T) {
	newWorkspace(t)
	root := workspaceRoot()
	segments := []string{"..", ".", "sub", "in", "out", "up", "loop", "x", "", "a/b", "/", "//", "\x00", "é", "secret"}
	rng := rand.New(rand.NewSource(33))
	for i := 0; i < 5000; i++ {
		parts := make([]string, rng.Intn(9))
		for j := range parts {
			parts[j] = segments[rng.Intn(len(segments))]
		}
		path := strings.Join(parts, "/")
		if rng.Intn(4) == 0 {
			path = "/" + path
		}
		if full, err := resolve(path, false, true); err == nil && full != root {
			// The last component is not followed (callers open it with O_NOFOLLOW): its folder is used.
			if used := realpath(filepath.Dir(full)); !inside(used, root) {
				t.Fatalf("resolve(%q) = %q: its folder %q is outside %q", path, full, used, root)
			}
		}
		if full, err := resolveFollow(path); err == nil {
			if used := realpath(full); !inside(used, root) {
				t.Fatalf("resolveFollow(%q) = %q, outside %q", path, full, root)
			}
		}
	}
}

func TestJailRefusals(t *testing.T) {
	newWorkspace(t)
	for path, want := range map[string]string{
		"/etc/passwd": "absolute paths are not allowed: '/etc/passwd' (use a path relative to the workspace)",
		"../secret":   "path leaves the workspace: '../secret'",
		"out/passwd":  "path leaves the workspace through a symbolic link: 'out/passwd'",
		"up/secret":   "path leaves the workspace through a symbolic link: 'up/secret'",
		"a\x00b":      "path contains a NUL byte",
	} {
		_, err := resolve(path, false, true)
		if st := status.Convert(statusFor(err)); st.Code() != codes.InvalidArgument || st.Message() != want {
			t.Errorf("resolve(%q): %v, want INVALID_ARGUMENT %q", path, err, want)
		}
	}
	if _, err := resolveFollow("out"); err == nil {
		t.Error("a final link out of the workspace was followed")
	}
	if _, err := resolve("", false, false); err == nil {
		t.Error("the workspace itself was accepted where a path inside it is needed")
	}
	if got, err := resolveFollow("sub/in/in"); err != nil || got != filepath.Join(workspaceRoot(), "sub") {
		t.Errorf("resolveFollow(sub/in/in) = %q, %v", got, err)
	}
}

func TestRealpathKeepsMissingParts(t *testing.T) {
	ws := newWorkspace(t)
	if got := realpath(filepath.Join(ws, "sub", "in", "new", "..", "x")); got != filepath.Join(ws, "sub", "x") {
		t.Errorf("realpath: %q", got)
	}
	if got := realpath(filepath.Join(ws, "loop", "x")); !strings.HasPrefix(got, ws) {
		t.Errorf("realpath of a loop: %q", got)
	}
}

func TestStatusCodes(t *testing.T) {
	for err, want := range map[error]codes.Code{
		&os.PathError{Op: "open", Path: "/workspace/a", Err: syscall.ENOENT}: codes.NotFound,
		&os.PathError{Op: "open", Path: "a", Err: syscall.EEXIST}:            codes.AlreadyExists,
		&os.PathError{Op: "open", Path: "a", Err: syscall.EACCES}:            codes.PermissionDenied,
		&os.PathError{Op: "open", Path: "a", Err: syscall.EROFS}:             codes.PermissionDenied,
		&os.PathError{Op: "write", Path: "a", Err: syscall.ENOSPC}:           codes.ResourceExhausted,
		&os.PathError{Op: "rmdir", Path: "a", Err: syscall.ENOTEMPTY}:        codes.FailedPrecondition,
		&plainError{syscall.EISDIR, "is a directory"}:                        codes.FailedPrecondition,
		jailErrorf("path leaves the workspace"):                              codes.InvalidArgument,
	} {
		if got := status.Code(statusFor(err)); got != want {
			t.Errorf("%v: %v, want %v", err, got, want)
		}
	}
	if msg := status.Convert(statusFor(&os.PathError{Op: "open", Path: "/workspace/a", Err: syscall.ENOENT})).Message(); msg != "not found: /workspace/a" {
		t.Errorf("not found: %q", msg)
	}
}

func TestHubOrderAndMarker(t *testing.T) {
	hub := newHub()
	hub.publish(&pb.GuestEvent{})
	sub := hub.subscribe()
	a := hub.publish(&pb.GuestEvent{Kind: &pb.GuestEvent_FileChanged{FileChanged: &pb.FileChanged{Path: "a"}}})
	b := hub.publish(&pb.GuestEvent{Kind: &pb.GuestEvent_FileChanged{FileChanged: &pb.FileChanged{Path: "b"}}})
	items, open := sub.take()
	if !open || len(items) != 3 || items[0].Kind != nil || items[0].Seq != 1 || items[1].Seq != a || items[2].Seq != b || b != a+1 {
		t.Fatalf("events: %v (open %v)", items, open)
	}
	hub.unsubscribe(sub)
	hub.publish(&pb.GuestEvent{})
	if items, open := sub.take(); open || len(items) != 0 {
		t.Fatalf("after unsubscribe: %v %v", items, open)
	}
	if hub.lastSeq() != b+1 {
		t.Fatalf("seq %d", hub.lastSeq())
	}
}

func TestBackslashReplace(t *testing.T) {
	if got := backslashReplace("a\xffé"); got != `a\xffé` {
		t.Errorf("%q", got)
	}
}

func TestCommandIDAndWhich(t *testing.T) {
	if !commandID.MatchString("ab-_9") || commandID.MatchString("a b") || commandID.MatchString(strings.Repeat("a", 65)) {
		t.Error("command id pattern")
	}
	if !which("sh", "/usr/bin:/bin") || which("no-such-program-here", "/usr/bin:/bin") || which("bin", "/usr:/") {
		t.Error("which")
	}
}

// serve starts the service on a unix socket in the test's folder; returns a client.
func serve(t *testing.T) pb.GuestAgentClient {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	listener, err := net.Listen("unix", sock)
	must(t, err)
	server := newServer(NewAgent())
	go server.Serve(listener)
	t.Cleanup(server.Stop)
	conn, err := grpc.Dial("unix:"+sock, grpc.WithInsecure())
	must(t, err)
	t.Cleanup(func() { conn.Close() })
	return pb.NewGuestAgentClient(conn)
}

func TestBootKeyAndClaim(t *testing.T) {
	newWorkspace(t)
	client := serve(t)
	ctx := context.Background()
	if _, err := client.Health(ctx, &pb.HealthRequest{}); err != nil {
		t.Fatalf("Health needs no key: %v", err)
	}
	if _, err := client.Stat(ctx, &pb.StatRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("before the claim: %v", err)
	}
	if _, err := client.Claim(ctx, &pb.ClaimRequest{BootKey: []byte("short")}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("a short key: %v", err)
	}
	key := []byte("0123456789abcdef0123")
	if _, err := client.Claim(ctx, &pb.ClaimRequest{BootKey: key}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Claim(ctx, &pb.ClaimRequest{BootKey: key}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("a second claim: %v", err)
	}
	wrong := metadata.AppendToOutgoingContext(ctx, bootKeyMetadata, "00"+strings.Repeat("1", 38))
	if _, err := client.Stat(wrong, &pb.StatRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("a wrong key: %v", err)
	}
	stream, err := client.Events(wrong, &pb.EventsRequest{})
	must(t, err)
	if _, err := stream.Recv(); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("events with a wrong key: %v", err)
	}
	right := metadata.AppendToOutgoingContext(ctx, bootKeyMetadata, "30313233343536373839616263646566"+"30313233")
	if r, err := client.Stat(right, &pb.StatRequest{}); err != nil || r.Info.Path != "." || r.Info.Type != pb.FileType_FILE_TYPE_DIRECTORY {
		t.Fatalf("with the key: %v %v", r, err)
	}
	if r, err := client.Info(right, &pb.InfoRequest{}); err != nil || r.AgentVersion != AgentVersion {
		t.Fatalf("info: %v %v", r, err)
	}
}

func TestFileCalls(t *testing.T) {
	ws := newWorkspace(t)
	client := serve(t)
	ctx := context.Background()
	key := []byte("0123456789abcdef")
	_, err := client.Claim(ctx, &pb.ClaimRequest{BootKey: key})
	must(t, err)
	ctx = metadata.AppendToOutgoingContext(ctx, bootKeyMetadata, "30313233343536373839616263646566")
	events, err := client.Events(ctx, &pb.EventsRequest{})
	must(t, err)
	marker, err := events.Recv()
	must(t, err)
	if marker.Kind != nil {
		t.Fatalf("the stream did not open with its marker: %v", marker)
	}

	w, err := client.WriteFile(ctx, &pb.WriteFileRequest{Path: "deep/er/f.txt", Data: []byte("hello"), Mode: 0o4755, CreateParents: true})
	if err != nil || w.Size != 5 {
		t.Fatalf("write: %v %v", w, err)
	}
	st, err := os.Stat(filepath.Join(ws, "deep", "er", "f.txt"))
	must(t, err)
	if st.Mode().Perm() != 0o755 || st.Mode()&os.ModeSetuid != 0 {
		t.Errorf("mode %v", st.Mode())
	}
	ev, err := events.Recv()
	must(t, err)
	if fc := ev.GetFileChanged(); fc == nil || fc.Path != "deep/er/f.txt" || fc.Change != pb.FileChanged_CHANGE_WRITTEN || fc.Size != 5 {
		t.Fatalf("event %v", ev)
	}
	// A link at the target is replaced, never written through.
	must(t, os.Symlink("/etc/hostname-of-nobody", filepath.Join(ws, "link")))
	_, err = client.WriteFile(ctx, &pb.WriteFileRequest{Path: "link", Data: []byte("x")})
	must(t, err)
	if lst, _ := os.Lstat(filepath.Join(ws, "link")); lst.Mode()&os.ModeSymlink != 0 {
		t.Error("the link is still there")
	}
	if _, err := client.WriteFile(ctx, &pb.WriteFileRequest{Path: "out/x", Data: []byte("x")}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("write through a link out: %v", err)
	}
	if _, err := client.WriteFile(ctx, &pb.WriteFileRequest{Path: "nope/x", Data: []byte("x")}); status.Code(err) != codes.NotFound {
		t.Fatalf("write without its folder: %v", err)
	}

	r, err := client.ReadFile(ctx, &pb.ReadFileRequest{Path: "deep/er/f.txt", Offset: 1, MaxBytes: 2})
	if err != nil || string(r.Data) != "el" || r.Size != 5 || r.Eof {
		t.Fatalf("read: %v %v", r, err)
	}
	r, err = client.ReadFile(ctx, &pb.ReadFileRequest{Path: "deep/er/f.txt", Offset: 3})
	if err != nil || string(r.Data) != "lo" || !r.Eof {
		t.Fatalf("read to the end: %v %v", r, err)
	}
	if _, err := client.ReadFile(ctx, &pb.ReadFileRequest{Path: "deep"}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("read a folder: %v", err)
	}
	if _, err := client.ReadFile(ctx, &pb.ReadFileRequest{Path: "missing"}); status.Code(err) != codes.NotFound {
		t.Fatalf("read a missing file: %v", err)
	}
	if _, err := client.ReadFile(ctx, &pb.ReadFileRequest{Path: "out/passwd"}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("read out: %v", err)
	}

	l, err := client.ListDir(ctx, &pb.ListDirRequest{Recursive: true})
	must(t, err)
	var names []string
	for _, e := range l.Entries {
		names = append(names, e.Path)
	}
	if got := strings.Join(names, " "); got != "deep link loop out sub up sub/in deep/er deep/er/f.txt" {
		t.Errorf("list: %s", got)
	}
	l, err = client.ListDir(ctx, &pb.ListDirRequest{Recursive: true, MaxEntries: 2})
	if err != nil || len(l.Entries) != 2 || !l.Truncated {
		t.Errorf("a capped list: %v %v", l, err)
	}
	if _, err := client.ListDir(ctx, &pb.ListDirRequest{Path: "link"}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("list a file: %v", err)
	}

	if _, err := client.Remove(ctx, &pb.RemoveRequest{Path: "deep"}); status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("remove a full folder: %v", err)
	}
	if _, err := client.Remove(ctx, &pb.RemoveRequest{Path: "out"}); err != nil {
		t.Fatalf("remove a link: %v", err)
	}
	if _, err := os.Stat("/etc"); err != nil {
		t.Fatal("removing the link removed its target")
	}
	if _, err := client.Remove(ctx, &pb.RemoveRequest{Path: "deep", Recursive: true}); err != nil {
		t.Fatalf("remove a folder: %v", err)
	}
	if _, err := client.Remove(ctx, &pb.RemoveRequest{Path: ""}); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("remove the workspace: %v", err)
	}
	if _, err := client.Stat(ctx, &pb.StatRequest{Path: "deep"}); status.Code(err) != codes.NotFound {
		t.Fatalf("stat what was removed: %v", err)
	}
	seq, err := client.Sync(ctx, &pb.SyncRequest{})
	must(t, err)
	for {
		ev, err := events.Recv()
		must(t, err)
		if ev.Seq == seq.Seq {
			if fc := ev.GetFileChanged(); fc == nil || fc.Path != "deep" || fc.Change != pb.FileChanged_CHANGE_REMOVED {
				t.Fatalf("the last event: %v", ev)
			}
			break
		}
	}
}
