#!/usr/bin/env python3
"""Raw HTTP/1.1 client for the integration tests (tests/lib/lib.sh raw_*).

Sends bytes exactly as given (malformed requests, lying Content-Length,
pipelined requests, half bodies), then reads and parses what the server
answers.  Only loopback addresses are accepted.

Output, one line each on stdout:
    STATUS <code>          for every final (non-1xx) response parsed
    INFO <code>            for every 1xx interim response
    CONN closed|open|reset|sent-error
                           what the connection did after the last parsed
                           response (closed: EOF within --close-wait
                           seconds; open: still open; reset: ECONNRESET)
The raw bytes received go to --out when given.

Options:
    --port P               server port on 127.0.0.1 (or --host 127.x.y.z)
    --request FILE         bytes to send ('-' for stdin)
    --then FILE            bytes to send once a 100 Continue arrives (the
                           body of an Expect: 100-continue request)
    --next FILE            bytes to send after the first final response
                           (a second request on the same connection)
    --shutdown-write       half-close the connection after sending (the
                           server sees EOF where it may expect more)
    --responses N          number of final responses to parse (default 1;
                           0 = send and do not read at all)
    --hold-file PATH       after sending, create PATH and keep the socket
                           open until PATH is removed (or --hold-max secs),
                           then close without reading: a client that
                           dies mid-upload
    --head                 responses are to HEAD requests (no body)
    --close-wait S         how long to wait for EOF after the last response
                           (default 3; 0 = do not check)
    --timeout S            per-read timeout (default 30)
"""

import argparse
import errno
import os
import socket
import sys
import time


class Closed(Exception):
    pass


class ClosedAfterResponse(Exception):
    """A response whose body ended with the connection."""


class Reader:
    def __init__(self, sock, timeout, sink):
        self.sock = sock
        self.buf = b""
        self.timeout = timeout
        self.sink = sink

    def fill(self):
        self.sock.settimeout(self.timeout)
        data = self.sock.recv(65536)
        if not data:
            raise Closed()
        if self.sink is not None:
            self.sink.write(data)
        self.buf += data

    def read_until(self, marker):
        while marker not in self.buf:
            self.fill()
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_exact(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def parse_response(rd, head):
    """Returns (status, headers dict lower-case -> last value)."""
    raw = rd.read_until(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    status_line = lines[0]
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/"):
        raise ValueError("bad status line: %r" % status_line)
    status = int(parts[1])
    headers = {}
    for line in lines[1:]:
        if not line:
            continue
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if 100 <= status < 200 or head or status in (204, 304):
        return status, headers
    te = headers.get("transfer-encoding", "").lower()
    if "chunked" in te:
        while True:
            size_line = rd.read_until(b"\r\n").decode("latin-1").strip()
            size = int(size_line.split(";")[0], 16)
            if size == 0:
                rd.read_until(b"\r\n")  # trailers end (no trailers expected)
                break
            rd.read_exact(size + 2)
    elif "content-length" in headers:
        rd.read_exact(int(headers["content-length"]))
    else:
        # Body delimited by close.
        try:
            while True:
                rd.fill()
        except Closed:
            rd.buf = b""
            raise ClosedAfterResponse(status)
    return status, headers


def send_all(sock, data):
    try:
        sock.sendall(data)
        return True
    except OSError:
        return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--request", required=True)
    ap.add_argument("--then")
    ap.add_argument("--next")
    ap.add_argument("--shutdown-write", action="store_true")
    ap.add_argument("--responses", type=int, default=1)
    ap.add_argument("--hold-file")
    ap.add_argument("--hold-max", type=float, default=300)
    ap.add_argument("--head", action="store_true")
    ap.add_argument("--close-wait", type=float, default=3)
    ap.add_argument("--timeout", type=float, default=30)
    ap.add_argument("--out")
    a = ap.parse_args()

    if not a.host.startswith("127."):
        sys.exit("rawhttp: only loopback addresses are allowed")

    if a.request == "-":
        data = sys.stdin.buffer.read()
    else:
        with open(a.request, "rb") as f:
            data = f.read()

    sock = socket.create_connection((a.host, a.port), timeout=a.timeout)
    sink = open(a.out, "wb") if a.out else None
    sent_ok = send_all(sock, data)
    if a.shutdown_write:
        try:
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    if a.hold_file:
        with open(a.hold_file, "w"):
            pass
        deadline = time.monotonic() + a.hold_max
        while os.path.exists(a.hold_file) and time.monotonic() < deadline:
            time.sleep(0.05)
        sock.close()
        print("CONN held")
        return 0

    if a.responses == 0:
        sock.close()
        print("CONN dropped")
        return 0

    rd = Reader(sock, a.timeout, sink)
    conn = None
    parsed = 0
    then_sent = a.then is None
    next_sent = a.next is None
    try:
        while parsed < a.responses:
            status, _ = parse_response(rd, a.head)
            if 100 <= status < 200:
                print("INFO %d" % status)
                if not then_sent:
                    with open(a.then, "rb") as f:
                        send_all(sock, f.read())
                    then_sent = True
                continue
            print("STATUS %d" % status)
            parsed += 1
            if not next_sent:
                with open(a.next, "rb") as f:
                    send_all(sock, f.read())
                next_sent = True
    except ClosedAfterResponse as e:
        print("STATUS %d" % e.args[0])
        conn = "closed"
    except Closed:
        conn = "closed"
    except ConnectionResetError:
        conn = "reset"
    except socket.timeout:
        conn = "timeout"
    except ValueError as e:
        print("BAD %s" % e)
        conn = "garbage"

    if conn is None:
        if rd.buf:
            conn = "more-data"
        elif a.close_wait <= 0:
            conn = "unchecked"
        else:
            rd.timeout = a.close_wait
            try:
                rd.fill()
                conn = "more-data"
            except Closed:
                conn = "closed"
            except ConnectionResetError:
                conn = "reset"
            except socket.timeout:
                conn = "open"
    if not sent_ok and conn not in ("closed", "reset"):
        conn = "sent-error"
    print("CONN %s" % conn)
    sock.close()
    if sink:
        sink.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
