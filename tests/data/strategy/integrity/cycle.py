# Never reads the board: the best cycle of up to four moves, kept in a counter.
moves = ["up", "right", "down", "right"]
count = [0]


def strategy(board):
    count[0] += 1
    return moves[count[0] % 4]
