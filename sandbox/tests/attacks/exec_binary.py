# Escape: execute a shell.
import posix
def strategy(board, info):
    posix.execv("/bin/sh", ["sh", "-c", "echo pwned > " + info["canary"]])
    return "up"
