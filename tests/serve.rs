//! `grpclb serve` speaks the protocols clients and tools expect: reflection
//! (what `grpcurl list` uses), health, and the identity header on every reply.

mod support;

use tonic_reflection::pb::v1::ServerReflectionRequest;
use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;

use grpclb::proto::WhoAmIRequest;
use grpclb::proto::echo_client::EchoClient;
use support::Backend;

#[tokio::test]
async fn reflection_lists_echo_and_health() {
    let pod = Backend::start("127.0.0.93", "reflect-1");
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", pod.address))
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut replies = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::once(request))
        .await
        .expect("reflection call")
        .into_inner();
    let reply = replies.message().await.expect("reply").expect("one reply");
    let Some(MessageResponse::ListServicesResponse(list)) = reply.message_response else {
        panic!("unexpected reply {reply:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for wanted in ["grpclb.v1.Echo", "grpc.health.v1.Health"] {
        assert!(
            names.iter().any(|n| n == wanted),
            "{wanted} missing from {names:?}"
        );
    }
}

#[tokio::test]
async fn who_am_i_reports_the_downward_api_identity() {
    let mut command = std::process::Command::new(support::grpclb_bin());
    command
        .args(["serve", "--listen", "127.0.0.94:0"])
        .env("POD_NAME", "echo-5d9c-abcde")
        .env("POD_IP", "10.1.0.7")
        .env("NODE_NAME", "node-a")
        .env("POD_ZONE", "zone-1");
    let (_process, line) =
        support::spawn_until_line(command, "listening on", std::time::Duration::from_secs(20));
    let address = line
        .split("listening on ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("address");
    let mut client = EchoClient::connect(format!("http://{address}"))
        .await
        .expect("connect");
    let reply = client.who_am_i(WhoAmIRequest {}).await.expect("WhoAmI");
    assert_eq!(
        reply
            .metadata()
            .get("hostname")
            .and_then(|v| v.to_str().ok()),
        Some("echo-5d9c-abcde")
    );
    let identity = reply.into_inner();
    assert_eq!(
        (
            identity.name.as_str(),
            identity.pod_ip.as_str(),
            identity.node.as_str(),
            identity.zone.as_str()
        ),
        ("echo-5d9c-abcde", "10.1.0.7", "node-a", "zone-1")
    );
}
