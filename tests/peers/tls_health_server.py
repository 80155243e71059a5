"""A gRPC health server over TLS on the official C-core stack (Debian
python3-grpcio). Answers grpc.health.v1.Health/Check with SERVING, names
itself in the `hostname` response header, and requires client certificates
when a client CA is given. Prints "listening on HOST:PORT as NAME" once it
serves.

usage: tls_health_server.py HOST NAME CERT KEY [CLIENT_CA]
"""

import sys
from concurrent import futures

import grpc

# HealthCheckResponse{status: SERVING} in protobuf wire format: field 1, varint 1.
SERVING = b"\x08\x01"


def read(path):
    with open(path, "rb") as f:
        return f.read()


def main():
    host, name, cert, key = sys.argv[1:5]
    client_ca = sys.argv[5] if len(sys.argv) > 5 else None

    def check(request, context):
        context.send_initial_metadata((("hostname", name),))
        return SERVING

    handler = grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health",
        {"Check": grpc.unary_unary_rpc_method_handler(check)},
    )
    credentials = grpc.ssl_server_credentials(
        [(read(key), read(cert))],
        root_certificates=read(client_ca) if client_ca else None,
        require_client_auth=client_ca is not None,
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_secure_port(f"{host}:0", credentials)
    server.start()
    print(f"listening on {host}:{port} as {name}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
