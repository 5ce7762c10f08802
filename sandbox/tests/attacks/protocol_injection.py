# Reward hack: write forged frames on the reply channel, then a huge one.
import posix
def strategy(board, info):
    posix.write(4, b'{"ok": true}\n')
    posix.write(4, b"x" * 200000)
    return "up"
