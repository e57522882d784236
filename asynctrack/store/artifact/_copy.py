"""File copies at the disk's speed: in the kernel (copy_file_range, else sendfile), never through
Python buffers."""

from __future__ import annotations

import os
import shutil

_CHUNK = 1 << 30  # copy_file_range moves at most ~2 GiB a call


def copy_file(src: str, dst: str) -> None:
    """Copy the bytes of ``src`` into ``dst`` (created or truncated); reflinks where supported."""
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
    try:
        copy_into(src, fd, dst)
    finally:
        os.close(fd)


def copy_into(src: str, dst_fd: int, dst: str) -> None:
    """Copy the bytes of ``src`` into the open, empty file ``dst_fd`` (whose path is ``dst``)."""
    if hasattr(os, "copy_file_range"):
        fd_in = os.open(src, os.O_RDONLY)
        try:
            _copy_range(fd_in, dst_fd)
            return
        except OSError:
            os.ftruncate(dst_fd, 0)  # another filesystem, or a kernel without it
            os.lseek(dst_fd, 0, os.SEEK_SET)
        finally:
            os.close(fd_in)
    shutil.copyfile(src, dst)  # sendfile where the platform has it


def _copy_range(fd_in: int, fd_out: int) -> None:
    size = os.fstat(fd_in).st_size
    copied = 0
    while copied < size:
        n = os.copy_file_range(fd_in, fd_out, min(_CHUNK, size - copied))
        if n == 0:  # the source shrank under us, or a filesystem that copies nothing
            if copied == 0 and size > 0:
                raise OSError("copy_file_range copied nothing")
            break
        copied += n
