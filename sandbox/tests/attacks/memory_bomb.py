# Resource abuse: allocate 512 MiB (bounded so the negative control is safe).
def strategy(board, info):
    blocks = []
    for _ in range(64):
        blocks.append(bytearray(8 << 20))
    return "up"
