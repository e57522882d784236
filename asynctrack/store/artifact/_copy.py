"""File copies at the disk's speed: in the kernel (copy_file_range, else sendfile), never through
Python buffers."""

from __future__ import annotations

import os
import shutil

_CHUNK = 1 << 30  # copy_file_range moves at most ~2 GiB a call


def copy_file(src: str, dst: str) -> None:
    """Copy the bytes of ``src`` into ``dst`` (created or truncated); reflinks where supported."""
    if hasattr(os, "copy_file_range"):
        with open(src, "rb") as fsrc, open(dst, "wb") as fdst:
            try:
                _copy_range(fsrc.fileno(), fdst.fileno())
                return
            except OSError:
                pass  # another filesystem, or a kernel without it: shutil's sendfile below
    shutil.copyfile(src, dst)


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
