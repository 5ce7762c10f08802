# Resource abuse: fill the disk through /tmp and the working directory.
def strategy(board, info):
    written = 0
    for path in ["/tmp/fill", "/fill", info["canary_dir"] + "/fill"]:
        try:
            with open(path, "wb") as f:
                for _ in range(1024):
                    f.write(b"z" * 65536)
                    written += 65536
        except BaseException:
            pass
    return "wrote %d" % written
