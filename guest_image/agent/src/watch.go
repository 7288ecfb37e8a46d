package main

// Files written by any command in the shared folder, reported live as FileChanged events.
//
// fanotify with a mount mark on /workspace, in its classic (non-FID) mode: the kernel reports
// every write to a file on that mount, whoever made it, with a descriptor open on the file. The
// path comes from that descriptor (/proc/self/fd), which is closed at once. Unlike inotify this
// needs no watch per folder and pins no inodes, so it does not fight the handle keeper
// (handles.go) that keeps the host's share daemon under its open-files limit.
//
// Writes in progress (FAN_MODIFY) are reported at most about twice a second per file: the reader
// pauses between batches, and the kernel merges the events that queue up for the same file
// meanwhile. A finished write (FAN_CLOSE_WRITE) is reported as written. flush publishes what is
// queued at once: a command's exit and Sync call it first, so the files a command finished
// writing are on the event stream before its exit, in one order. The agent's own writes (the
// file tools) are skipped: it reports those itself. Removals and renames are not reported.

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	pb "paddock/agentpb"
)

const (
	batchPause  = 500 * time.Millisecond
	watchRead   = 64 * 1024
	maxReads    = 64 // per flush: the queue is emptied, but a flood cannot hold a command's exit forever
	metaSize    = 24 // struct fanotify_event_metadata
	metaVersion = 3
)

type Watcher struct {
	mu        sync.Mutex
	reading   sync.Mutex // one reader at a time, from read to publish: one order
	fd        int
	overflows int
}

var watcher = &Watcher{fd: -1}

func workspaceMounted() bool {
	data, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[1] == workspace && f[2] == "virtiofs" {
			return true
		}
	}
	return false
}

// ensure starts watching once the shared folder is mounted (at start and after each claim).
func (w *Watcher) ensure(hub *EventHub) {
	w.mu.Lock()
	if w.fd >= 0 || !workspaceMounted() {
		w.mu.Unlock()
		return
	}
	fd, err := w.open(workspace)
	if err != nil {
		w.mu.Unlock()
		logf("file watcher: %v", err)
		return
	}
	w.fd = fd
	w.mu.Unlock()
	go w.loop(fd, hub)
	logf("file watcher: watching %s", workspace)
}

// open marks the mount of path (any file system, for the Go tests' own folder too).
func (w *Watcher) open(path string) (int, error) {
	fd, err := unix.FanotifyInit(unix.FAN_CLOEXEC|unix.FAN_CLASS_NOTIF, uint(os.O_RDONLY|unix.O_CLOEXEC|unix.O_LARGEFILE))
	if err != nil {
		return -1, fmt.Errorf("not available (%v)", err)
	}
	if err := unix.FanotifyMark(fd, unix.FAN_MARK_ADD|unix.FAN_MARK_MOUNT, unix.FAN_MODIFY|unix.FAN_CLOSE_WRITE, unix.AT_FDCWD, path); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("cannot watch %s (%v)", path, err)
	}
	return fd, nil
}

func (w *Watcher) loop(fd int, hub *EventHub) {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		if _, err := unix.Poll(fds, -1); err != nil { // until the kernel has queued something
			if err == unix.EINTR {
				continue
			}
			return
		}
		if !w.publishQueued(fd, hub) {
			return
		}
		time.Sleep(batchPause) // a rate limit: writes to one file meanwhile are merged by the kernel
	}
}

// flush publishes what the kernel has queued now (a command's finished writes) before returning.
func (w *Watcher) flush(hub *EventHub) {
	w.mu.Lock()
	fd := w.fd
	w.mu.Unlock()
	if fd >= 0 {
		w.publishQueued(fd, hub)
	}
}

func (w *Watcher) publishQueued(fd int, hub *EventHub) bool {
	w.reading.Lock()
	defer w.reading.Unlock()
	buf := make([]byte, watchRead)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for i := 0; i < maxReads; i++ {
		if n, _ := unix.Poll(fds, 0); n <= 0 {
			return true
		}
		n, err := unix.Read(fd, buf)
		if err != nil {
			if err == unix.EINTR || err == unix.EAGAIN {
				continue
			}
			if err == unix.EBADF || err == unix.EINVAL {
				logf("file watcher: stopped (%v)", err)
				return false
			}
			// The kernel could not open the next file for us (a file its owner may not read, as
			// mode 000): that one report is lost, the watcher goes on.
			continue
		}
		w.publish(buf[:n], hub)
	}
	return true
}

type change struct {
	done   bool
	size   int64
	execID string
}

func (w *Watcher) publish(buf []byte, hub *EventHub) {
	me := os.Getpid()
	changes := map[string]change{}
	var order []string
	for off := 0; off+metaSize <= len(buf); {
		eventLen := int(binary.LittleEndian.Uint32(buf[off:]))
		vers := buf[off+4]
		if vers != metaVersion || eventLen < metaSize {
			logf("file watcher: unexpected event format (version %d)", vers)
			break
		}
		mask := binary.LittleEndian.Uint64(buf[off+8:])
		efd := int(int32(binary.LittleEndian.Uint32(buf[off+16:])))
		pid := int(int32(binary.LittleEndian.Uint32(buf[off+20:])))
		off += eventLen
		if mask&unix.FAN_Q_OVERFLOW != 0 {
			w.overflows++
			logf("file watcher: too many writes at once; some were not reported")
		}
		if efd < 0 {
			continue
		}
		var path string
		var size int64
		found := false
		if pid != me {
			path, size, found = relativeOf(efd)
		}
		unix.Close(efd)
		if !found {
			continue
		}
		prev, seen := changes[path]
		if !seen {
			order = append(order, path)
		}
		changes[path] = change{done: mask&unix.FAN_CLOSE_WRITE != 0 || prev.done, size: size, execID: commandRuns.of(pid)}
	}
	for _, path := range order {
		c := changes[path]
		kind := pb.FileChanged_CHANGE_WRITING
		if c.done {
			kind = pb.FileChanged_CHANGE_WRITTEN
		}
		hub.publish(&pb.GuestEvent{Kind: &pb.GuestEvent_FileChanged{FileChanged: &pb.FileChanged{
			Path: path, Change: kind, Size: c.size, ExecId: c.execID,
		}}})
	}
}

// relativeOf: the workspace-relative path and size of the file behind fd; false when it is not
// a regular file still linked inside the workspace.
func relativeOf(fd int) (string, int64, bool) {
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG || st.Nlink == 0 {
		return "", 0, false
	}
	target, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		return "", 0, false
	}
	root := workspace + "/"
	if !strings.HasPrefix(target, root) {
		return "", 0, false
	}
	return backslashReplace(target[len(root):]), st.Size, true
}

// backslashReplace shows a name's invalid UTF-8 as \xNN escapes (the host escapes the rest),
// as Python's "backslashreplace" did.
func backslashReplace(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			fmt.Fprintf(&b, "\\x%02x", s[i])
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}
