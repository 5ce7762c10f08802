# Resource abuse: print 200 KB to stdout and stderr, then answer.
import posix
def strategy(board, info):
    for _ in range(100):
        print("x" * 1000)
    for _ in range(100):
        try:
            posix.write(2, b"y" * 1000)
        except BaseException:
            pass
    return "up"
