# Reward hack: return a 1 MB action string (larger than a reply frame).
def strategy(board, info):
    return "up" * 500000
