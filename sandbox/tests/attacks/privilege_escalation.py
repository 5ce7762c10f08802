# Escape: become root outside / regain capabilities.
import posix
def strategy(board, info):
    posix.setuid(0)
    return "root"
