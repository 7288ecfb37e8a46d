"""The file calls (ReadFile, WriteFile, ListDir, Stat, Remove), each confined to the workspace."""

from __future__ import annotations

import errno
import os
import shutil
import stat

from paddock.guest.v1 import agent_pb2 as pb
from paddock_guest import config
from paddock_guest.config import LIST_CAP, READ_CAP
from paddock_guest.events import EventHub
from paddock_guest.jail import (
    as_owner,
    file_info,
    makedirs_as_owner,
    resolve,
    resolve_follow,
    workspace_relative,
)


def read_file(request: pb.ReadFileRequest) -> pb.ReadFileResponse:
    full = resolve_follow(request.path)
    cap = request.max_bytes if 0 < request.max_bytes <= READ_CAP else READ_CAP
    fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise IsADirectoryError(errno.EISDIR, "is a directory", request.path)
        data = os.pread(fd, cap, max(0, request.offset))
    finally:
        os.close(fd)
    return pb.ReadFileResponse(data=data, size=st.st_size, eof=max(0, request.offset) + len(data) >= st.st_size)


def write_file(request: pb.WriteFileRequest, hub: EventHub) -> pb.WriteFileResponse:
    full = resolve(request.path, allow_root=False)
    parent = os.path.dirname(full)
    with as_owner():
        return _write_file(request, full, parent, hub)


def _write_file(request: pb.WriteFileRequest, full: str, parent: str, hub: EventHub) -> pb.WriteFileResponse:
    if request.create_parents:
        makedirs_as_owner(parent)
    # A symlink at the target is replaced by the rename, never written through.
    tmp = os.path.join(parent, f".paddock-tmp-{os.urandom(16).hex()}")
    mode = request.mode & 0o777 or 0o644  # never setuid, setgid or sticky
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        view = memoryview(request.data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fchmod(fd, mode)
        os.fsync(fd)
        os.close(fd)
        fd = -1
        os.rename(tmp, full)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    hub.publish(
        file_changed=pb.FileChanged(
            path=workspace_relative(full), change=pb.FileChanged.CHANGE_WRITTEN, size=len(request.data)
        )
    )
    return pb.WriteFileResponse(size=len(request.data))


def list_dir(request: pb.ListDirRequest) -> pb.ListDirResponse:
    top = resolve_follow(request.path)
    cap = request.max_entries if 0 < request.max_entries <= LIST_CAP else LIST_CAP
    if not os.path.isdir(top):
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", request.path)
    entries: list[pb.FileInfo] = []
    truncated = False
    stack = [top]
    while stack and not truncated:
        current = stack.pop()
        with os.scandir(current) as it:
            for entry in sorted(it, key=lambda e: e.name):
                if len(entries) >= cap:
                    truncated = True
                    break
                rel = workspace_relative(entry.path)
                entries.append(file_info(entry.path, rel))
                if request.recursive and entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
    return pb.ListDirResponse(entries=entries, truncated=truncated)


def stat_path(request: pb.StatRequest) -> pb.StatResponse:
    full = resolve(request.path, must_exist=True)
    return pb.StatResponse(
        info=file_info(full, workspace_relative(full) if full != os.path.realpath(config.WORKSPACE) else ".")
    )


def remove(request: pb.RemoveRequest, hub: EventHub) -> pb.RemoveResponse:
    full = resolve(request.path, must_exist=True, allow_root=False)
    if os.path.isdir(full) and not os.path.islink(full):
        if request.recursive:
            shutil.rmtree(full)
        else:
            os.rmdir(full)
    else:
        os.unlink(full)
    hub.publish(file_changed=pb.FileChanged(path=workspace_relative(full), change=pb.FileChanged.CHANGE_REMOVED))
    return pb.RemoveResponse()
