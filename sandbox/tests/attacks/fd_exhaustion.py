# Resource abuse: exhaust file descriptors.
import posix
def strategy(board, info):
    n = 0
    try:
        while n < 100000:
            posix.dup(1)
            n += 1
    except BaseException:
        pass
    return "fds %d" % n
