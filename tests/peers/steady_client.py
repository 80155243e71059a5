"""A gRPC client on the official C-core stack (Debian python3-grpcio) that
keeps THREADS calls of grpc.health.v1.Health/Check going over one channel
for SECONDS, and prints what happened as JSON: {"ok": n, "errors": {code: n},
"servers": {hostname: n}}. C-core retries a call that a server's GOAWAY
refused before processing it (transparent retry), so a graceful server
costs it no call.

usage: steady_client.py TARGET SECONDS THREADS
"""

import json
import sys
import threading
import time

import grpc


def main():
    target, seconds, threads = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
    # round_robin over an ipv4: list; C-core sends the list as :authority
    # unless told otherwise (see round_robin_client.py).
    options = [
        ("grpc.lb_policy_name", "round_robin"),
        ("grpc.default_authority", "grpclb-serve"),
    ]
    lock = threading.Lock()
    result = {"ok": 0, "errors": {}, "servers": {}}
    with grpc.insecure_channel(target, options=options) as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        deadline = time.monotonic() + seconds

        def worker():
            while time.monotonic() < deadline:
                try:
                    _, call = check.with_call(b"", timeout=5)
                    name = dict(call.initial_metadata()).get("hostname", "(none)")
                    with lock:
                        result["ok"] += 1
                        result["servers"][name] = result["servers"].get(name, 0) + 1
                except grpc.RpcError as err:
                    code = err.code().name
                    with lock:
                        result["errors"][code] = result["errors"].get(code, 0) + 1

        workers = [threading.Thread(target=worker) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
