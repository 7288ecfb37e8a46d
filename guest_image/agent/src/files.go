package main

// The file calls (ReadFile, WriteFile, ListDir, Stat, Remove), each confined to the workspace.

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	pb "paddock/agentpb"
)

// plainError is an error whose text the host sees as it is, with its errno's status code.
type plainError struct {
	errno syscall.Errno
	msg   string
}

func (e *plainError) Error() string { return e.msg }

func readFile(req *pb.ReadFileRequest) (*pb.ReadFileResponse, error) {
	full, err := resolveFollow(req.Path)
	if err != nil {
		return nil, err
	}
	limit := int64(readCap)
	if req.MaxBytes > 0 && req.MaxBytes <= readCap {
		limit = req.MaxBytes
	}
	f, err := os.OpenFile(full, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, &plainError{syscall.EISDIR, "is a directory"}
	}
	offset := req.Offset
	if offset < 0 {
		offset = 0
	}
	buf := make([]byte, limit)
	n := 0
	for int64(n) < limit {
		got, err := f.ReadAt(buf[n:], offset+int64(n))
		n += got
		if err != nil || got == 0 {
			break
		}
	}
	return &pb.ReadFileResponse{Data: buf[:n], Size: st.Size(), Eof: offset+int64(n) >= st.Size()}, nil
}

func writeFile(req *pb.WriteFileRequest, hub *EventHub) (*pb.WriteFileResponse, error) {
	full, err := resolve(req.Path, false, false)
	if err != nil {
		return nil, err
	}
	parent := filepath.Dir(full)
	err = asOwner(func() error {
		if req.CreateParents {
			if err := makedirsAsOwner(parent); err != nil {
				return err
			}
		}
		// A symbolic link at the target is replaced by the rename, never written through.
		b := make([]byte, 16)
		rand.Read(b)
		tmp := filepath.Join(parent, ".paddock-tmp-"+hex.EncodeToString(b))
		mode := req.Mode & 0o777 // never setuid, setgid or sticky
		if mode == 0 {
			mode = 0o644
		}
		fd, err := syscall.Open(tmp, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_EXCL|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, mode)
		if err != nil {
			return &os.PathError{Op: "open", Path: tmp, Err: err}
		}
		fail := func(err error) error {
			if fd >= 0 {
				syscall.Close(fd)
			}
			os.Remove(tmp)
			return err
		}
		for data := req.Data; len(data) > 0; {
			n, err := syscall.Write(fd, data)
			if err != nil {
				return fail(&os.PathError{Op: "write", Path: tmp, Err: err})
			}
			data = data[n:]
		}
		if err := syscall.Fchmod(fd, mode); err != nil {
			return fail(&os.PathError{Op: "chmod", Path: tmp, Err: err})
		}
		if err := syscall.Fsync(fd); err != nil {
			return fail(&os.PathError{Op: "fsync", Path: tmp, Err: err})
		}
		err = syscall.Close(fd)
		fd = -1
		if err != nil {
			return fail(&os.PathError{Op: "close", Path: tmp, Err: err})
		}
		if err := syscall.Rename(tmp, full); err != nil {
			return fail(&os.PathError{Op: "rename", Path: full, Err: err})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	hub.publish(&pb.GuestEvent{Kind: &pb.GuestEvent_FileChanged{FileChanged: &pb.FileChanged{
		Path: workspaceRelative(full), Change: pb.FileChanged_CHANGE_WRITTEN, Size: int64(len(req.Data)),
	}}})
	return &pb.WriteFileResponse{Size: int64(len(req.Data))}, nil
}

func listDir(req *pb.ListDirRequest) (*pb.ListDirResponse, error) {
	top, err := resolveFollow(req.Path)
	if err != nil {
		return nil, err
	}
	limit := listCap
	if req.MaxEntries > 0 && req.MaxEntries <= listCap {
		limit = int(req.MaxEntries)
	}
	if st, err := os.Stat(top); err != nil || !st.IsDir() {
		return nil, &plainError{syscall.ENOTDIR, "not a directory"}
	}
	var entries []*pb.FileInfo
	truncated := false
	stack := []string{top}
	for len(stack) > 0 && !truncated {
		current := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		f, err := os.Open(current)
		if err != nil {
			return nil, err
		}
		names, err := f.Readdirnames(-1)
		f.Close()
		if err != nil {
			return nil, err
		}
		sort.Strings(names)
		for _, name := range names {
			if len(entries) >= limit {
				truncated = true
				break
			}
			path := filepath.Join(current, name)
			info, err := fileInfo(path, workspaceRelative(path))
			if err != nil {
				return nil, err
			}
			entries = append(entries, info)
			if req.Recursive && info.Type == pb.FileType_FILE_TYPE_DIRECTORY {
				stack = append(stack, path)
			}
		}
	}
	return &pb.ListDirResponse{Entries: entries, Truncated: truncated}, nil
}

func statPath(req *pb.StatRequest) (*pb.StatResponse, error) {
	full, err := resolve(req.Path, true, true)
	if err != nil {
		return nil, err
	}
	rel := "."
	if full != workspaceRoot() {
		rel = workspaceRelative(full)
	}
	info, err := fileInfo(full, rel)
	if err != nil {
		return nil, err
	}
	return &pb.StatResponse{Info: info}, nil
}

func removePath(req *pb.RemoveRequest, hub *EventHub) (*pb.RemoveResponse, error) {
	full, err := resolve(req.Path, true, false)
	if err != nil {
		return nil, err
	}
	lst, err := os.Lstat(full)
	if err != nil {
		return nil, err
	}
	st, statErr := os.Stat(full)
	if statErr == nil && st.IsDir() && lst.Mode()&os.ModeSymlink == 0 {
		if req.Recursive {
			err = os.RemoveAll(full)
		} else {
			err = syscall.Rmdir(full)
			if err != nil {
				err = &os.PathError{Op: "rmdir", Path: full, Err: err}
			}
		}
	} else {
		err = syscall.Unlink(full)
		if err != nil {
			err = &os.PathError{Op: "unlink", Path: full, Err: err}
		}
	}
	if err != nil {
		return nil, err
	}
	hub.publish(&pb.GuestEvent{Kind: &pb.GuestEvent_FileChanged{FileChanged: &pb.FileChanged{
		Path: workspaceRelative(full), Change: pb.FileChanged_CHANGE_REMOVED,
	}}})
	return &pb.RemoveResponse{}, nil
}

var _ = errors.New
