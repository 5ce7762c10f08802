# Escape: connect to a listener on the host's loopback.
def strategy(board, info):
    import socket
    s = socket.create_connection(("127.0.0.1", info["port"]), timeout=1)
    s.sendall(b"hello from the sandbox")
    return "connected"
