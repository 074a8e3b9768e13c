"""A D4 protocol v1 sensor written from the public format, independent of
the relay's C code: frames are built with struct + hmac, sent over ssl."""
import hashlib
import hmac
import socket
import ssl
import struct
import time

HEADER = struct.Struct("<BB16sQ32sI")  # 62 bytes, little-endian


def frame(uuid_hex, key, payload, ftype=8, version=1, ts=None, bad_hmac=False,
          size=None):
    uuid = bytes.fromhex(uuid_hex)
    ts = int(time.time()) if ts is None else ts
    size = len(payload) if size is None else size
    zero = HEADER.pack(version, ftype, uuid, ts, b"\0" * 32, size)
    mac = hmac.new(key, zero + payload, hashlib.sha256).digest()
    if bad_hmac:
        mac = bytes([mac[0] ^ 1]) + mac[1:]
    return HEADER.pack(version, ftype, uuid, ts, mac, size) + payload


def connect(port, host="127.0.0.1"):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection((host, port), timeout=10)
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def closed_by_peer(sock, timeout=5.0):
    """True when the relay closes the connection within timeout."""
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def readn(sock, n):
    """Exactly n bytes from sock, or None when it closes first."""
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def read_frame(sock):
    """One D4 frame as (header bytes, payload), or None when sock closes."""
    hdr = readn(sock, 62)
    if hdr is None:
        return None
    payload = readn(sock, struct.unpack("<I", hdr[58:62])[0])
    return None if payload is None else (hdr, payload)
