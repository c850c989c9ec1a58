"""tests/common/pyfs.py: helpers for the python snippets in tests/fs.

Each call prints "label: ok" or "label: ENAME" so that golden outputs name
errors by their errno symbol, independent of message wording.
"""
import ctypes
import errno
import os

RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2
AT_FDCWD = -100

_libc = ctypes.CDLL(None, use_errno=True)


def ename(e):
    return errno.errorcode.get(e.errno, str(e.errno))


def t(label, fn, *args, **kw):
    """Call fn; print label and ok or the errno name; return the result."""
    try:
        r = fn(*args, **kw)
    except OSError as e:
        print("%s: %s" % (label, ename(e)))
        return None
    print("%s: ok" % label)
    return r


def renameat2(old, new, flags):
    r = _libc.renameat2(AT_FDCWD, os.fsencode(old), AT_FDCWD,
                        os.fsencode(new), ctypes.c_uint(flags))
    if r != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def readall(path):
    with open(path, "rb") as f:
        return f.read()


def is_zero(b):
    return b.count(0) == len(b)
