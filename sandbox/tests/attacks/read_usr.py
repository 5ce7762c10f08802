# Escape probe (for the stage-2 negative control): list and read files.
import posix
def strategy(board, info):
    return "listed %d" % len(posix.listdir("/usr"))
