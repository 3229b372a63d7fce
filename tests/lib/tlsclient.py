#!/usr/bin/env python3
"""tlsclient.py: TLS clients that curl cannot be (tests/integration/83_tls).

  pipeline PORT CA PATH...   one TLS connection, every GET sent in one write
                             (pipelined); prints "STATUS LENGTH SHA256" per
                             response, in order
  hold PORT CA GOFILE        GET /v2/, print "STATUS SERIAL", wait until
                             GOFILE exists, GET /v2/ again on the same
                             connection, print "STATUS"
  garbage PORT               random bytes instead of a ClientHello, close
  half PORT                  half a ClientHello, close
  hello PORT                 a whole ClientHello, close without reading
  idle PORT                  connect and close
"""
import hashlib
import os
import socket
import ssl
import sys
import time

HOST = "127.0.0.1"


def connect(port, ca):
    ctx = ssl.create_default_context(cafile=ca)
    raw = socket.create_connection((HOST, port), timeout=60)
    return ctx.wrap_socket(raw, server_hostname=HOST)


def read_response(s, buf):
    """One response from socket s (buf: bytes already read); returns
    (status, body, rest)."""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError("connection closed in the headers")
        buf += chunk
    head, buf = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    while len(buf) < length:
        chunk = s.recv(1 << 20)
        if not chunk:
            raise EOFError("connection closed in the body")
        buf += chunk
    return status, buf[:length], buf[length:]


def get(path):
    return ("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path, HOST)).encode()


def client_hello():
    ctx = ssl.create_default_context()
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=HOST)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return out.read()


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    if mode == "pipeline":
        s = connect(port, sys.argv[3])
        s.sendall(b"".join(get(p) for p in sys.argv[4:]))
        buf = b""
        for _ in sys.argv[4:]:
            status, body, buf = read_response(s, buf)
            print(status, len(body), hashlib.sha256(body).hexdigest())
        s.close()
    elif mode == "hold":
        s = connect(port, sys.argv[3])
        s.sendall(get("/v2/"))
        status, _, buf = read_response(s, b"")
        print(status, s.getpeercert()["serialNumber"], flush=True)
        while not os.path.exists(sys.argv[4]):
            time.sleep(0.05)
        s.sendall(get("/v2/"))
        status, _, buf = read_response(s, buf)
        print(status, flush=True)
        s.close()
    else:
        s = socket.create_connection((HOST, port), timeout=10)
        if mode == "garbage":
            s.sendall(os.urandom(3000))
        elif mode == "half":
            hello = client_hello()
            s.sendall(hello[: len(hello) // 2])
        elif mode == "hello":
            s.sendall(client_hello())
        s.close()


if __name__ == "__main__":
    main()
