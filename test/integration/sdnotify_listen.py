#!/usr/bin/env python3
"""Plays systemd's side of sd_notify for the integration tests (stdlib only).

sdnotify_listen.py SOCKET LOG [PORT]
  Binds SOCKET (a path, or "@name" for the abstract namespace) as the AF_UNIX datagram socket
  of NOTIFY_SOCKET and appends one line per message to LOG: "<monotonic seconds> <fields
  joined by '|'>". When PORT is given, on every READY=1 it connects to 127.0.0.1:PORT at
  once (racing the pooler: readiness must mean the port accepts) and logs "CONNECT ok" or
  "CONNECT failed: why". Runs until killed.
"""
import socket
import sys
import time


def main():
    path, log = sys.argv[1], sys.argv[2]
    port = int(sys.argv[3]) if len(sys.argv) > 3 else None
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind("\0" + path[1:] if path.startswith("@") else path)
    with open(log, "a", buffering=1) as out:
        out.write("%.6f LISTENING\n" % time.monotonic())
        while True:
            data = s.recv(4096).decode("utf-8", "replace")
            fields = data.strip("\n").split("\n")
            out.write("%.6f %s\n" % (time.monotonic(), "|".join(fields)))
            if port and "READY=1" in fields:
                try:
                    c = socket.create_connection(("127.0.0.1", port), timeout=0.5)
                    c.close()
                    out.write("%.6f CONNECT ok\n" % time.monotonic())
                except OSError as e:
                    out.write("%.6f CONNECT failed: %s\n" % (time.monotonic(), e))


if __name__ == "__main__":
    main()
