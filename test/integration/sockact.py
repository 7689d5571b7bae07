#!/usr/bin/env python3
"""A stand-in for systemd-socket-activate (stdlib only): binds and listens on each
--listen ADDRESS (HOST:PORT, or a Unix socket path), puts the sockets on descriptors 3, 4...
and execs COMMAND with LISTEN_FDS / LISTEN_PID set, as systemd passes a socket unit's sockets.

sockact.py --listen 127.0.0.1:6432 --listen /run/x/.s.PGSQL.6432 -- COMMAND [ARGS...]
"""
import fcntl
import os
import socket
import sys


def main():
    args = sys.argv[1:]
    addrs = []
    while args and args[0] != "--":
        if args[0] in ("-l", "--listen"):
            addrs.append(args[1])
            args = args[2:]
        else:
            sys.exit("sockact.py: unknown option " + args[0])
    cmd = args[1:]
    if not addrs or not cmd:
        sys.exit(__doc__)
    socks = []
    for a in addrs:
        if a.startswith("/"):
            if os.path.exists(a):
                os.unlink(a)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.bind(a)
        else:
            host, port = a.rsplit(":", 1)
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((host, int(port)))
        s.listen(128)
        socks.append(s)
    # Out of the way first, so that moving one onto 3, 4... never closes another.
    high = [fcntl.fcntl(s.fileno(), fcntl.F_DUPFD, 100) for s in socks]
    for s in socks:
        s.close()
    for i, fd in enumerate(high):
        os.dup2(fd, 3 + i)
        os.close(fd)
    os.environ["LISTEN_FDS"] = str(len(socks))
    os.environ["LISTEN_PID"] = str(os.getpid())
    os.execvp(cmd[0], cmd)


if __name__ == "__main__":
    main()
