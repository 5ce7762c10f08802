# Resource abuse / escape: fork a child that spins (a fork bomb's first step).
import posix
def strategy(board, info):
    pid = posix.fork()
    if pid == 0:
        while True:
            pass
    return "forked"
