# Resource abuse: start threads that spin.
import _thread
def spin():
    while True:
        pass
def strategy(board, info):
    for _ in range(1000):
        _thread.start_new_thread(spin, ())
    return "up"
