#!/usr/bin/env python3
"""The native client's stream, measured from the outside (bench/native.sh).

  native_streams.py opens  PORT TOKEN PATH N   -> p50/p99 of N stream opens
  native_streams.py hold   PORT TOKEN PATH N   -> holds N streams open until
                                                  stdin closes; prints "ready"

An open is timed from the request's first byte to the answer's head, on a
TLS connection made beforehand: what `bastion tunnel` pays per connection
with its warm spare. Standard library only.
"""
import base64
import json
import os
import socket
import ssl
import sys
import time


def connect(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=15)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return ctx.wrap_socket(raw)


def upgrade(s, port, token, path):
    key = base64.b64encode(os.urandom(16)).decode()
    req = (f"GET /api/v1{path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
           "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Protocol: bastion.stream.v1\r\n"
           f"Authorization: Bearer {token}\r\n\r\n").encode()
    t0 = time.perf_counter()
    s.sendall(req)
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            raise RuntimeError("closed before the answer")
        buf += d
    ms = (time.perf_counter() - t0) * 1000
    status = int(buf.split(b" ", 2)[1])
    if status != 101:
        raise RuntimeError(buf.decode("latin1", "replace")[:300])
    return ms


def main():
    mode, port, token, path, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
    if mode == "opens":
        times = []
        for _ in range(n):
            s = connect(port)
            times.append(upgrade(s, port, token, path))
            s.close()
        times.sort()
        print(json.dumps({"n": n, "p50_ms": round(times[n // 2], 3),
                          "p99_ms": round(times[min(n - 1, int(n * 0.99))], 3),
                          "max_ms": round(times[-1], 3)}))
    else:
        held = []
        for _ in range(n):
            s = connect(port)
            upgrade(s, port, token, path)
            held.append(s)
        print("ready", flush=True)
        sys.stdin.read()
        for s in held:
            s.close()


if __name__ == "__main__":
    main()
