"""Helpers the bench scripts share: HTTP to yund over its Unix socket."""
import http.client
import json
import socket


class Conn(http.client.HTTPConnection):
    def __init__(self, path, timeout=600):
        super().__init__("yund", timeout=timeout)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def call(sock, method, path, body=None, raw=False):
    """One request; returns (status, decoded JSON or raw bytes)."""
    c = Conn(sock)
    c.request(method, path, body=json.dumps(body) if body is not None else None)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, (data if raw else (json.loads(data) if data else None))
