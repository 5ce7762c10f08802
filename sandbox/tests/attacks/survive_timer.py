# Resource abuse: ignore SIGXCPU and swallow every exception while spinning.
import _signal
_signal.signal(24, lambda *a: None)  # SIGXCPU
def strategy(board, info):
    while True:
        try:
            while True:
                pass
        except BaseException:
            pass
