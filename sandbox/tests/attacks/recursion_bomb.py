# Resource abuse: unbounded recursion with the recursion limit raised.
import sys
sys.setrecursionlimit(10**9)
def f(n):
    return f(n + 1) + 1
def strategy(board, info):
    return f(0)
