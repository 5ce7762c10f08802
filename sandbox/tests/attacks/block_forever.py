# Resource abuse: block without using CPU (sleep, then read the request pipe).
import posix, time
def strategy(board, info):
    try:
        time.sleep(1000)
    except BaseException:
        pass
    posix.read(3, 1)
    posix.read(3, 1)
    return "up"
