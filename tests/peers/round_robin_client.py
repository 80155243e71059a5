"""A gRPC client on the official C-core stack (Debian python3-grpcio) that
balances with gRPC's own round_robin policy over an ipv4: target and counts
replies by the `hostname` response header. Prints the counts as JSON.

usage: round_robin_client.py TARGET CALLS
"""

import json
import sys

import grpc


def main():
    target, calls = sys.argv[1], int(sys.argv[2])
    # For an ipv4: target C-core sends the whole address list as :authority
    # ("a:p,b:p"), which Rust's h2 (under tonic) rejects as malformed with
    # RST_STREAM PROTOCOL_ERROR; name the authority as any real client would.
    options = [
        ("grpc.lb_policy_name", "round_robin"),
        ("grpc.default_authority", "grpclb-serve"),
    ]
    with grpc.insecure_channel(target, options=options) as channel:
        grpc.channel_ready_future(channel).result(timeout=10)
        # grpclb.v1.Echo/WhoAmI takes an empty message; bytes in, bytes out.
        who_am_i = channel.unary_unary("/grpclb.v1.Echo/WhoAmI")
        counts = {}
        for _ in range(calls):
            _, call = who_am_i.with_call(b"", timeout=5, wait_for_ready=True)
            name = dict(call.initial_metadata()).get("hostname", "(none)")
            counts[name] = counts.get(name, 0) + 1
    print(json.dumps(counts), flush=True)


if __name__ == "__main__":
    main()
