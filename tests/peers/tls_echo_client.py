"""A gRPC client over TLS on the official C-core stack (Debian
python3-grpcio): calls grpclb.v1.Echo/Echo on `grpclb serve` with metadata,
and prints as JSON who answered and the metadata the server says it got.

usage: tls_echo_client.py ADDRESS SERVER_NAME CA [CERT KEY]
"""

import json
import sys

import grpc


def read(path):
    with open(path, "rb") as f:
        return f.read()


def varint(data, i):
    shift = value = 0
    while True:
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, i


def fields(data):
    """(field number, bytes) of each length-delimited field of a message."""
    i = 0
    while i < len(data):
        tag, i = varint(data, i)
        number, kind = tag >> 3, tag & 7
        if kind == 2:
            size, i = varint(data, i)
            yield number, data[i : i + size]
            i += size
        elif kind == 0:
            _, i = varint(data, i)
        else:
            raise ValueError(f"unexpected wire type {kind}")


def main():
    address, server_name, ca = sys.argv[1:4]
    cert, key = (sys.argv[4], sys.argv[5]) if len(sys.argv) > 5 else (None, None)
    credentials = grpc.ssl_channel_credentials(
        root_certificates=read(ca),
        private_key=read(key) if key else None,
        certificate_chain=read(cert) if cert else None,
    )
    options = [("grpc.ssl_target_name_override", server_name)]
    with grpc.secure_channel(address, credentials, options=options) as channel:
        echo = channel.unary_unary("/grpclb.v1.Echo/Echo")
        reply, call = echo.with_call(
            b"",
            timeout=10,
            metadata=(("tenant", "blue"), ("trace-bin", b"\x00\x01\x02")),
        )
        hostname = dict(call.initial_metadata()).get("hostname", "(none)")
    # EchoReply: metadata is field 3, map entries of key (1) and value (2).
    received = {}
    authority = ""
    for number, value in fields(reply):
        if number == 3:
            entry = dict(fields(value))
            received[entry.get(1, b"").decode()] = entry.get(2, b"").decode()
        elif number == 4:
            authority = value.decode()
    print(json.dumps({"hostname": hostname, "metadata": received, "authority": authority}), flush=True)


if __name__ == "__main__":
    main()
