#!/usr/bin/env python3
"""A tiny line-based key-value store over TCP, standing in for a database.

Protocol: one command per line, `SET key value`, `GET key` or `PING`; one reply line.
Every SET is appended to the data file, which is replayed at start.
`--ping` connects to a running store, sends PING and exits 0 on `PONG` (a health check).
"""
import argparse
import os
import signal
import socket
import socketserver
import sys


def ping(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
            conn.sendall(b"PING\n")
            return 0 if conn.makefile().readline().strip() == "PONG" else 1
    except OSError as err:
        print(f"ping failed: {err}", file=sys.stderr)
        return 1


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=15433)
    parser.add_argument("--data", default="data/kv.log")
    parser.add_argument("--ping", action="store_true")
    args = parser.parse_args()
    if args.ping:
        return ping(args.port)

    store = {}
    os.makedirs(os.path.dirname(args.data) or ".", exist_ok=True)
    if os.path.exists(args.data):
        with open(args.data) as log:
            for line in log:
                key, _, value = line.rstrip("\n").partition(" ")
                store[key] = value
    log = open(args.data, "a", buffering=1)

    class Handler(socketserver.StreamRequestHandler):
        def handle(self):
            for raw in self.rfile:
                parts = raw.decode(errors="replace").strip().split(" ", 2)
                if parts[0] == "PING":
                    reply = "PONG"
                elif parts[0] == "SET" and len(parts) == 3:
                    store[parts[1]] = parts[2]
                    log.write(f"{parts[1]} {parts[2]}\n")
                    reply = "OK"
                elif parts[0] == "GET" and len(parts) == 2:
                    reply = store.get(parts[1], "")
                else:
                    reply = "ERR unknown command"
                self.wfile.write((reply + "\n").encode())

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    server = socketserver.ThreadingTCPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"kvstore listening on 127.0.0.1:{args.port} with {len(store)} keys", flush=True)
    try:
        server.serve_forever()
    finally:
        log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
