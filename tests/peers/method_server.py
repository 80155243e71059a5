"""A user's own gRPC service on the official C-core stack (Debian python3-grpcio).

Compiles lbtest.proto (beside this script) with Debian's python3-grpc-tools
into OUT_DIR, serves lbtest.v1.Greeter and names itself in the `hostname`
response header, as gRPC's interop servers do. Server reflection (from
grpcio-reflection, v1alpha) is on unless --no-reflection is given. Each
request Hello receives is appended to --log FILE as one line of proto3 JSON.
Prints "listening on HOST:PORT as NAME" once it serves.

usage: method_server.py HOST NAME OUT_DIR [--no-reflection] [--log FILE]
"""

import argparse
import os
import sys
import threading
from concurrent import futures

import grpc
from grpc_tools import protoc


def compile_proto(out_dir):
    here = os.path.dirname(os.path.abspath(__file__))
    status = protoc.main([
        "grpc_tools.protoc",
        f"-I{here}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        os.path.join(here, "lbtest.proto"),
    ])
    if status != 0:
        sys.exit(f"protoc failed with {status}")
    sys.path.insert(0, out_dir)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("name")
    parser.add_argument("out_dir")
    parser.add_argument("--no-reflection", action="store_true")
    parser.add_argument("--log")
    args = parser.parse_args()

    compile_proto(args.out_dir)
    import lbtest_pb2
    import lbtest_pb2_grpc
    from google.protobuf import json_format

    name = args.name
    identity = (("hostname", name),)
    log_lock = threading.Lock()

    class Greeter(lbtest_pb2_grpc.GreeterServicer):
        def Hello(self, request, context):
            context.send_initial_metadata(identity)
            if args.log:
                line = json_format.MessageToJson(request, indent=None, sort_keys=True)
                with log_lock, open(args.log, "a") as log:
                    log.write(line.replace("\n", " ") + "\n")
            return lbtest_pb2.HelloReply(
                message=f"hello {request.name}", server=name, count=request.count
            )

        def Fail(self, request, context):
            context.set_trailing_metadata(identity)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{name} refuses {request.name}")

        def Watch(self, request, context):
            yield lbtest_pb2.HelloReply(message="streamed", server=name)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    lbtest_pb2_grpc.add_GreeterServicer_to_server(Greeter(), server)
    if not args.no_reflection:
        from grpc_reflection.v1alpha import reflection

        names = (
            lbtest_pb2.DESCRIPTOR.services_by_name["Greeter"].full_name,
            reflection.SERVICE_NAME,
        )
        reflection.enable_server_reflection(names, server)
    port = server.add_insecure_port(f"{args.host}:0")
    server.start()
    print(f"listening on {args.host}:{port} as {name}", flush=True)
    server.wait_for_termination()


if __name__ == "__main__":
    main()
