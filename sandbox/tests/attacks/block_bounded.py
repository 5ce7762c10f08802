# Resource abuse (bounded, for the negative control): block 3 s on a lock.
import _thread
def strategy(board, info):
    lock = _thread.allocate_lock()
    lock.acquire()
    lock.acquire(timeout=3.0)
    return "up"
