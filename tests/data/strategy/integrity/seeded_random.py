import random

rng = random.Random(7)


def strategy(board):
    return rng.choice(["up", "down", "left", "right"])
