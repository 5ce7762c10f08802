# Resource abuse: spin forever on the CPU.
def strategy(board, info):
    while True:
        pass
