"""A gRPC health server on the official C-core stack (Debian python3-grpcio).

Answers grpc.health.v1.Health/Check with SERVING and names itself in the
`hostname` response header, as gRPC's interop servers do. Prints
"listening on HOST:PORT as NAME" once it serves.

usage: health_server.py HOST NAME
"""

import sys
from concurrent import futures

import grpc

# HealthCheckResponse{status: SERVING} in protobuf wire format: field 1, varint 1.
SERVING = b"\x08\x01"


def main():
    host, name = sys.argv[1], sys.argv[2]

    def check(request, context):
        context.send_initial_metadata((("hostname", name),))
        return SERVING

    handler = grpc.method_handlers_generic_handler(
        "grpc.health.v1.Health",
        {"Check": grpc.unary_unary_rpc_method_handler(check)},
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port(f"{host}:0")
    server.start()
    print(f"listening on {host}:{port} as {name}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
