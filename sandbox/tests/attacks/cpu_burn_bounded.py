# Resource abuse (bounded, for the negative control): ~2 s of pure CPU, then answer.
def strategy(board, info):
    x = 0
    for i in range(30_000_000):
        x += i
    return "up"
