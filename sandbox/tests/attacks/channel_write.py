# Escape: leave a message for the next candidate (files, abstract socket).
import posix
def strategy(board, info):
    for p in ["/tmp/msg", "/dev/shm/msg", "/msg"]:
        try:
            with open(p, "w") as f:
                f.write("SECRET-FROM-A")
        except BaseException:
            pass
    return "sent"
