# Resource abuse at definition time: spin while the module loads.
while True:
    pass
def strategy(board, info):
    return "up"
