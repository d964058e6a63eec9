#!/usr/bin/env python3
"""API latency and connect rate, measured from the outside (bench/pg.sh,
bench/lb.sh). Standard library only; every figure is one JSON line.

  api_bench.py api PORT TOKEN N CONC M
      signin: N sequential `POST /auth/login` (admin, the password from
              the environment's BENCH_ADMIN_PW, never argv) on one
              keep-alive TLS connection: request written -> answer read;
      list:   N sequential `GET /groups/bench/vms` (bearer TOKEN), likewise;
      conc:   CONC clients at once, each on its own keep-alive connection,
              M requests each: three `GET /groups/bench/vms` for one
              idempotent `PUT /groups/bench/networks/vnet` (a write that
              changes nothing), p50/p99 over all and requests per second.
  api_bench.py connects PORT TOKEN PATH BODY SECS CONC
      CONC clients, for SECS seconds, each connect on a fresh TLS
      connection: `POST PATH` (keep-alive), then the terminal's WebSocket
      upgrade on the SAME connection (so a TCP load balancer sends both to
      one instance), until the first terminal byte, then close. Connects
      per second (completed ones), p50/p99 of one connect, failures.
  api_bench.py disconnect PORT_A PORT_B TOKEN PATH BODY N
      N times, one after the other: a session connected on instance A
      (POST, the upgrade on the same connection, the first terminal
      byte), then `DELETE /sessions/{id}` sent to instance B (another
      instance on the same store): from the DELETE written until A's
      terminal closes (its close frame or the end of the connection).
      p50/p99, the DELETE's own answer time, failures.
  api_bench.py visible PORT_A PORT_B TOKEN N
      How late instance B sees a change made on instance A (B answers a
      list from its read cache, kept true by PostgreSQL's notifications):
      N times, B's `GET /groups/bench/vms` (warm), then a VM put on A
      (or, every other time, deleted), then B's list asked again and
      again until it shows the change: from A's answer read until B's.
      p50/p99, and how many rounds B's first list after A's answer still
      showed the old state (stale_first).

TLS is not verified (the bench's self-signed certificate, on loopback).
"""
import base64
import json
import os
import resource
import socket
import ssl
import sys
import threading
import time

CTX = ssl.create_default_context()
CTX.check_hostname = False
CTX.verify_mode = ssl.CERT_NONE


def pct(v, p):
    v = sorted(v)
    if not v:
        return None
    return round(v[min(len(v) - 1, int(len(v) * p))], 3)


def lat(v):
    return {"n": len(v), "p50_ms": pct(v, 0.5), "p99_ms": pct(v, 0.99), "max_ms": round(max(v), 3) if v else None}


class Conn:
    """One keep-alive HTTP/1.1 connection over TLS."""

    def __init__(self, port):
        self.port = port
        raw = socket.create_connection(("127.0.0.1", port), timeout=30)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.s = CTX.wrap_socket(raw)
        self.buf = b""

    def _head(self):
        while b"\r\n\r\n" not in self.buf:
            d = self.s.recv(65536)
            if not d:
                raise RuntimeError("connection closed before the answer")
            self.buf += d
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        hdr = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            hdr[k.strip().lower()] = v.strip()
        return status, hdr

    def request(self, method, path, headers=None, body=None):
        """Returns (status, body bytes)."""
        data = b"" if body is None else body
        req = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
        for k, v in (headers or {}).items():
            req += f"{k}: {v}\r\n"
        if body is not None:
            req += f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\n"
        self.s.sendall(req.encode() + b"\r\n" + data)
        status, hdr = self._head()
        n = int(hdr.get("content-length", "0"))
        while len(self.buf) < n:
            d = self.s.recv(65536)
            if not d:
                raise RuntimeError("connection closed in the body")
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return status, out

    def upgrade_first_byte(self, path, token):
        """The terminal's WebSocket on this connection, until the first
        binary frame with payload."""
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
               f"Authorization: Bearer {token}\r\nOrigin: https://127.0.0.1:{self.port}\r\n"
               "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Protocol: bastion.v1\r\n\r\n")
        self.s.sendall(req.encode())
        status, _ = self._head()
        if status != 101:
            raise RuntimeError(f"upgrade answered {status}")
        while True:
            op, ln = self.frame()
            if op == 2 and ln > 0:
                return
            if op == 8:
                raise RuntimeError("terminal closed before its first byte")

    def frame(self):
        """Reads one server frame (unmasked) and drops its payload;
        returns (opcode, payload length)."""
        while len(self.buf) < 2:
            self._more()
        op = self.buf[0] & 0x0F
        ln = self.buf[1] & 0x7F
        off = 2
        if ln == 126:
            while len(self.buf) < 4:
                self._more()
            ln = int.from_bytes(self.buf[2:4], "big")
            off = 4
        elif ln == 127:
            while len(self.buf) < 10:
                self._more()
            ln = int.from_bytes(self.buf[2:10], "big")
            off = 10
        while len(self.buf) < off + ln:
            self._more()
        self.buf = self.buf[off + ln:]
        return op, ln

    def _more(self):
        d = self.s.recv(65536)
        if not d:
            raise RuntimeError("connection closed")
        self.buf += d

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def timed(fn):
    t0 = time.perf_counter()
    r = fn()
    return (time.perf_counter() - t0) * 1000, r


def api(port, token, password, n, conc, m):
    auth = {"Authorization": f"Bearer {token}"}
    out = {}
    c = Conn(port)
    login = json.dumps({"username": "admin", "password": password}).encode()
    v = []
    for _ in range(n):
        ms, (st, _) = timed(lambda: c.request("POST", "/api/v1/auth/login", body=login))
        if st != 200:
            raise RuntimeError(f"sign-in answered {st}")
        v.append(ms)
    out["signin"] = lat(v)
    v = []
    for _ in range(n):
        ms, (st, _) = timed(lambda: c.request("GET", "/api/v1/groups/bench/vms", auth))
        if st != 200:
            raise RuntimeError(f"list answered {st}")
        v.append(ms)
    out["list"] = lat(v)
    c.close()

    st, body = Conn(port).request("GET", "/api/v1/groups/bench/networks/vnet", auth)
    net = json.loads(body)
    put = json.dumps({"address_prefixes": net.get("address_prefixes") or
                      net.get("properties", {}).get("address_prefixes")}).encode()
    all_v, errs = [], []
    lock = threading.Lock()

    def client():
        mine = []
        try:
            cc = Conn(port)
            for i in range(m):
                if i % 4 == 3:
                    ms, (st, _) = timed(lambda: cc.request("PUT", "/api/v1/groups/bench/networks/vnet", auth, put))
                else:
                    ms, (st, _) = timed(lambda: cc.request("GET", "/api/v1/groups/bench/vms", auth))
                if st not in (200, 201):
                    raise RuntimeError(f"answered {st}")
                mine.append(ms)
            cc.close()
        except Exception as e:  # noqa: BLE001 - counted and reported
            with lock:
                errs.append(str(e)[:200])
        with lock:
            all_v.extend(mine)

    t0 = time.perf_counter()
    th = [threading.Thread(target=client) for _ in range(conc)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    secs = time.perf_counter() - t0
    out["conc"] = dict(lat(all_v), clients=conc, req_s=round(len(all_v) / secs, 1),
                       errors=len(errs), first_error=errs[0] if errs else None)
    print(json.dumps(out))


def connects(port, token, path, body_file, secs, conc):
    body = open(body_file, "rb").read()
    auth = {"Authorization": f"Bearer {token}"}
    lock = threading.Lock()
    v, errs = [], []
    stop = time.perf_counter() + secs

    def client():
        while time.perf_counter() < stop:
            c = None
            t0 = time.perf_counter()
            try:
                c = Conn(port)
                st, rb = c.request("POST", path, auth, body)
                if st != 201 and st != 200:
                    raise RuntimeError(f"connect answered {st}: {rb[:200]!r}")
                term = json.loads(rb)["session"]["terminal"]
                c.upgrade_first_byte(term, token)
                ms = (time.perf_counter() - t0) * 1000
                with lock:
                    v.append(ms)
            except Exception as e:  # noqa: BLE001 - counted and reported
                with lock:
                    errs.append(str(e)[:200])
                time.sleep(0.05)
            finally:
                if c:
                    c.close()

    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    th = [threading.Thread(target=client) for _ in range(conc)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    el = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    # The client's own CPU: on a small machine it competes with what it measures.
    print(json.dumps(dict(lat(v), clients=conc, secs=round(el, 2), connects_s=round(len(v) / el, 2),
                          client_cpu_s=round(cpu, 2), errors=len(errs), first_error=errs[0] if errs else None)))


def wait_closed(c, limit):
    """Reads c's terminal until its close frame or the end of the
    connection, at most limit seconds; True when it closed."""
    c.s.settimeout(limit)
    try:
        while True:
            if c.frame()[0] == 8:
                return True
    except socket.timeout:
        return False
    except (RuntimeError, OSError):  # the connection ended (with or without TLS's close)
        return True


def disconnect(port_a, port_b, token, path, body_file, n):
    body = open(body_file, "rb").read()
    auth = {"Authorization": f"Bearer {token}"}
    v, dv, errs = [], [], []
    b = Conn(port_b)
    for _ in range(n):
        a = None
        try:
            a = Conn(port_a)
            st, rb = a.request("POST", path, auth, body)
            if st not in (200, 201):
                raise RuntimeError(f"connect answered {st}: {rb[:200]!r}")
            sess = json.loads(rb)["session"]
            a.upgrade_first_byte(sess["terminal"], token)
            t0 = time.perf_counter()
            st, rb = b.request("DELETE", f"/api/v1/sessions/{sess['id']}", auth)
            dv.append((time.perf_counter() - t0) * 1000)
            if st not in (200, 202, 204):
                raise RuntimeError(f"DELETE on B answered {st}: {rb[:200]!r}")
            if not wait_closed(a, 10):
                raise RuntimeError("the terminal on A did not close within 10 s")
            v.append((time.perf_counter() - t0) * 1000)
        except Exception as e:  # noqa: BLE001 - counted and reported
            errs.append(str(e)[:200])
            if not isinstance(e, RuntimeError):
                b.close()
                b = Conn(port_b)
        finally:
            if a:
                a.close()
    b.close()
    print(json.dumps(dict(lat(v), delete_answer=lat(dv), over_1s=sum(1 for x in v if x > 1000),
                          errors=len(errs), first_error=errs[0] if errs else None)))


def visible(port_a, port_b, token, n):
    auth = {"Authorization": f"Bearer {token}"}
    path = "/api/v1/groups/bench/vms/visible"
    body = json.dumps({"nic": "/groups/bench/nics/lite-nic", "ssh_port": 2222}).encode()
    v, errs, stale = [], [], 0
    a, b = Conn(port_a), Conn(port_b)
    for i in range(n):
        want = i % 2 == 0
        try:
            b.request("GET", "/api/v1/groups/bench/vms", auth)
            st, rb = a.request("PUT", path, auth, body) if want else a.request("DELETE", path, auth)
            if st not in (200, 201, 204):
                raise RuntimeError(f"{'PUT' if want else 'DELETE'} on A answered {st}: {rb[:200]!r}")
            t0 = time.perf_counter()
            for polls in range(100000):
                st, rb = b.request("GET", "/api/v1/groups/bench/vms", auth)
                if st != 200:
                    raise RuntimeError(f"list on B answered {st}")
                if (b'"/groups/bench/vms/visible"' in rb) == want:
                    break
                if time.perf_counter() - t0 > 5:
                    raise RuntimeError("B did not see the change within 5 s")
            v.append((time.perf_counter() - t0) * 1000)
            stale += polls > 0
        except Exception as e:  # noqa: BLE001 - counted and reported
            errs.append(str(e)[:200])
    a.close()
    b.close()
    print(json.dumps(dict(lat(v), stale_first=stale, errors=len(errs), first_error=errs[0] if errs else None)))


def main():
    a = sys.argv[1:]
    if a and a[0] == "api" and len(a) == 6:
        api(int(a[1]), a[2], os.environ["BENCH_ADMIN_PW"], int(a[3]), int(a[4]), int(a[5]))
    elif a and a[0] == "connects" and len(a) == 7:
        connects(int(a[1]), a[2], a[3], a[4], float(a[5]), int(a[6]))
    elif a and a[0] == "disconnect" and len(a) == 7:
        disconnect(int(a[1]), int(a[2]), a[3], a[4], a[5], int(a[6]))
    elif a and a[0] == "visible" and len(a) == 5:
        visible(int(a[1]), int(a[2]), a[3], int(a[4]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
