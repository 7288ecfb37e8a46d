package main

// The workspace jail: whose files they are, and paths that cannot leave the workspace.

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	pb "paddock/agentpb"
)

// jailError is a path the caller gave that is not inside the workspace (INVALID_ARGUMENT).
type jailError struct{ msg string }

func (e *jailError) Error() string { return e.msg }

func jailErrorf(format string, args ...interface{}) error {
	return &jailError{fmt.Sprintf(format, args...)}
}

// pyRepr quotes a path as the Python agent's messages did ('x'), for the same words on the host.
func pyRepr(s string) string {
	if !strings.Contains(s, "'") {
		return "'" + s + "'"
	}
	return fmt.Sprintf("%q", s)
}

// realpath resolves every symbolic link in path, like Python's os.path.realpath: the parts
// that do not exist are kept as they are, and a loop of links stops the resolution there.
func realpath(path string) string {
	if !filepath.IsAbs(path) {
		wd, _ := os.Getwd()
		path = filepath.Join(wd, path)
	}
	resolved, _ := joinReal("/", path, 0)
	return resolved
}

const maxLinks = 40

func joinReal(base, rest string, hops int) (string, bool) {
	if strings.HasPrefix(rest, "/") {
		base = "/"
	}
	parts := strings.Split(rest, "/")
	for i, name := range parts {
		if name == "" || name == "." {
			continue
		}
		if name == ".." {
			base = filepath.Dir(base)
			continue
		}
		next := filepath.Join(base, name)
		st, err := os.Lstat(next)
		if err != nil || st.Mode()&os.ModeSymlink == 0 {
			base = next
			continue
		}
		target, err := os.Readlink(next)
		if err != nil || hops >= maxLinks {
			return filepath.Join(append([]string{next}, parts[i+1:]...)...), false
		}
		var ok bool
		base, ok = joinReal(base, target, hops+1)
		if !ok {
			return filepath.Join(append([]string{base}, parts[i+1:]...)...), false
		}
	}
	return base, true
}

func workspaceRoot() string { return realpath(workspace) }

func inside(path, root string) bool {
	return path == root || strings.HasPrefix(path, root+"/")
}

// resolve maps a workspace-relative path to an absolute guest path inside the workspace. The
// parent chain is resolved, so a symbolic link on the way that leads outside is refused; the
// final component is not followed (callers open it with O_NOFOLLOW or lstat).
func resolve(rel string, mustExist, allowRoot bool) (string, error) {
	if strings.Contains(rel, "\x00") {
		return "", jailErrorf("path contains a NUL byte")
	}
	if strings.HasPrefix(rel, "/") {
		return "", jailErrorf("absolute paths are not allowed: %s (use a path relative to the workspace)", pyRepr(rel))
	}
	norm := "."
	if rel != "" {
		norm = filepath.Clean(rel)
	}
	if norm == ".." || strings.HasPrefix(norm, "../") {
		return "", jailErrorf("path leaves the workspace: %s", pyRepr(rel))
	}
	root := workspaceRoot()
	if norm == "." {
		if !allowRoot {
			return "", jailErrorf("this operation needs a path inside the workspace, not the workspace itself")
		}
		return root, nil
	}
	parent, name := filepath.Split(norm)
	realParent := realpath(filepath.Join(root, parent))
	if !inside(realParent, root) {
		return "", jailErrorf("path leaves the workspace through a symbolic link: %s", pyRepr(rel))
	}
	full := filepath.Join(realParent, name)
	if mustExist {
		if _, err := os.Lstat(full); err != nil {
			return "", &os.PathError{Op: "lstat", Path: rel, Err: syscall.ENOENT}
		}
	}
	return full, nil
}

// resolveFollow is resolve, but follows a final symbolic link as long as it stays inside.
func resolveFollow(rel string) (string, error) {
	full, err := resolve(rel, false, true)
	if err != nil {
		return "", err
	}
	real := realpath(full)
	if !inside(real, workspaceRoot()) {
		return "", jailErrorf("path leaves the workspace through a symbolic link: %s", pyRepr(rel))
	}
	return real, nil
}

func workspaceRelative(full string) string {
	rel, err := filepath.Rel(workspaceRoot(), full)
	if err != nil {
		return full
	}
	return rel
}

// workspaceOwner: commands run as whoever owns the shared folder as the guest sees it (the host
// maps the person to uid 1000 here), so what they create belongs to the person on the host.
func workspaceOwner() (int, int, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(workspace, &st); err != nil {
		return 0, 0, err
	}
	return int(st.Uid), int(st.Gid), nil
}

// asOwner runs fn with this thread's file-system identity set to the workspace's owner
// (setfsuid is per thread): the host's share daemon maps only the owner's uid, so a file
// created as guest root would be refused there.
func asOwner(fn func() error) error {
	uid, gid, err := workspaceOwner()
	if err != nil {
		return err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	oldGid, _ := unix.SetfsgidRetGid(gid)
	oldUid, _ := unix.SetfsuidRetUid(uid)
	defer func() {
		unix.SetfsuidRetUid(oldUid)
		unix.SetfsgidRetGid(oldGid)
	}()
	return fn()
}

// makedirsAsOwner creates the missing folders down to path (call it inside asOwner), checking
// that each new one still lies inside the workspace.
func makedirsAsOwner(path string) error {
	root := workspaceRoot()
	var missing []string
	for p := path; ; p = filepath.Dir(p) {
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			break
		}
		missing = append(missing, p)
		if p == "/" {
			break
		}
	}
	for i := len(missing) - 1; i >= 0; i-- {
		d := missing[i]
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
		if !inside(realpath(d), root) {
			return jailErrorf("path leaves the workspace")
		}
	}
	return nil
}

func fileInfo(full, rel string) (*pb.FileInfo, error) {
	var st syscall.Stat_t
	if err := syscall.Lstat(full, &st); err != nil {
		return nil, &os.PathError{Op: "lstat", Path: full, Err: err}
	}
	kind := pb.FileType_FILE_TYPE_OTHER
	switch st.Mode & syscall.S_IFMT {
	case syscall.S_IFREG:
		kind = pb.FileType_FILE_TYPE_FILE
	case syscall.S_IFDIR:
		kind = pb.FileType_FILE_TYPE_DIRECTORY
	case syscall.S_IFLNK:
		kind = pb.FileType_FILE_TYPE_SYMLINK
	}
	return &pb.FileInfo{
		Path:  rel,
		Type:  kind,
		Size:  st.Size,
		Mode:  st.Mode & 0o7777,
		Mtime: float64(st.Mtim.Sec) + float64(st.Mtim.Nsec)/1e9,
	}, nil
}
