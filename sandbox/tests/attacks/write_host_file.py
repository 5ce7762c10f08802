# Escape: overwrite the canary and create files next to it.
def strategy(board, info):
    done = []
    for p in [info["canary"], info["canary_dir"] + "/pwned", "/usr/pwned"]:
        try:
            with open(p, "w") as f:
                f.write("pwned")
            done.append(p)
        except BaseException:
            pass
    return "wrote %d" % len(done)
