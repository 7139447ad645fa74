"""The few Linux system calls the namespace supervisor needs, through libc.

Python's standard library has no ``mount``, ``unshare``, ``prctl``, ``capset`` or interface flags; these thin wrappers raise
``OSError`` with the errno and the path, so a failing sandbox setup says exactly which step failed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import fcntl
import os
import socket
import struct

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_SET_PDEATHSIG = 38, 24, 1
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
CAP_LAST_POSSIBLE = 63
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
_CAPABILITY_VERSION_3 = 0x20080522

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _b(value: str | None) -> bytes | None:
    return value.encode() if value is not None else None


def mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    _check(_libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)), f"mount {fstype or source} on {target}")


def make_private(path: str = "/") -> None:
    """Stop mounts made here from propagating back to the host's mount namespace."""
    mount(None, path, None, MS_REC | MS_PRIVATE)


def bind_readonly(source: str, target: str) -> None:
    """Show ``source`` at ``target`` read-only, without setuid binaries or device nodes."""
    mount(source, target, None, MS_BIND | MS_REC)
    mount(None, target, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def bind_device(source: str, target: str) -> None:
    """A single device node (``/dev/null``...): bound as it is, since device files need ``nodev`` off."""
    mount(source, target, None, MS_BIND)
    mount(None, target, None, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NOEXEC)


# A tmpfs's size cap counts file contents only: each file, however empty, also pins an inode and a
# directory entry (about 1 KiB) of kernel memory that no limit of the run counts. So inodes are
# capped too, at 16 per MiB of size (16,384 for the default 1 GiB: far more files than any
# submission writes, about 16 MiB of kernel memory at most) and never below 1,024.
INODES_PER_MB = 16
MIN_INODES = 1024


def inodes_for(size_mb: int) -> int:
    """The inode cap of a tmpfs of ``size_mb``."""
    return max(MIN_INODES, size_mb * INODES_PER_MB)


def tmpfs(target: str, size_mb: int, mode: str = "755") -> None:
    """A memory-backed file system capped at ``size_mb`` and at ``inodes_for(size_mb)`` files:
    the run's only writable place."""
    mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size_mb}m,nr_inodes={inodes_for(size_mb)},mode={mode}")


def procfs(target: str) -> None:
    """A /proc of the current PID namespace: only the sandbox's own processes are in it."""
    mount("proc", target, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)


def loopback_up() -> None:
    """A new network namespace starts with ``lo`` down; the notebook kernel talks over it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, request)[:18])[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP))


def drop_capability_bounding_set() -> None:
    """No capability can ever be regained, even by executing a file that carries some."""
    for cap in range(CAP_LAST_POSSIBLE + 1):
        if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == 22:
            break  # EINVAL: past the last capability this kernel knows


def set_no_new_privs() -> None:
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(PR_SET_NO_NEW_PRIVS)")


def sethostname(name: str) -> None:
    _check(_libc.sethostname(name.encode(), len(name)), "sethostname")


def unshare(flags: int) -> None:
    """New namespaces for this process (a new PID namespace: for its next child, which is its PID 1)."""
    _check(_libc.unshare(flags), f"unshare({flags:#x})")


def map_root_to(uid: int, gid: int) -> None:
    """In a user namespace just made: the caller's host ``uid``/``gid`` become root in it, as
    ``unshare --map-root-user`` does (no other id is mapped)."""
    for name, content in (("setgroups", "deny"), ("uid_map", f"0 {uid} 1"), ("gid_map", f"0 {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(content)


def die_with_parent() -> None:
    """SIGKILL this process when the one that forked it exits (``unshare --kill-child``'s promise)."""
    _check(_libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0), "prctl(PR_SET_PDEATHSIG)")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def clear_capabilities() -> None:
    """Empty this process's effective, permitted and inheritable capability sets (the ambient set
    empties with them). ``execve`` does this for a process whose bounding set is empty; one that
    goes on without executing anything must do it itself."""
    header, data = _CapHeader(_CAPABILITY_VERSION_3, 0), (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), data), "capset")
