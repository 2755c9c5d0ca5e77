//! The shipped Envoy and Traefik examples refer to the endpoints and headers Portcullis really
//! has (there is no Envoy or Traefik binary here to run them; nginx runs for real in `nginx`).
//! And the OpenAPI document covers every route the server answers.

use crate::support::{Client, TestEnv, repo_path};

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo_path(rel)).unwrap()
}

#[test]
fn envoy_example_matches_the_barong_contract() {
    let envoy = read("config/envoy/envoy.yaml");
    let settings = portcullis::config::Settings::from_toml("").unwrap();
    assert!(envoy.contains(&format!("path_prefix: {}", settings.decision.prefix)));
    assert!(envoy.contains("failure_mode_allow: false"));
    for header in [
        "cookie",
        "x-auth-apikey",
        "x-auth-nonce",
        "x-auth-signature",
        "x-csrf-token",
        "user-agent",
        "x-forwarded-for",
    ] {
        assert!(
            envoy.contains(&format!("{{ exact: {header} }}")),
            "{header} not forwarded to authz"
        );
    }
    assert!(envoy.contains("allowed_upstream_headers:\n                            patterns: [{ exact: authorization }]"));
}

#[test]
fn envoy_grpc_example_calls_check_over_http2() {
    let envoy = read("config/envoy/envoy-grpc.yaml");
    assert!(envoy.contains("transport_api_version: V3"));
    assert!(envoy.contains("failure_mode_allow: false"));
    assert!(envoy.contains("envoy_grpc: { cluster_name: portcullis_grpc }"));
    let cluster = &envoy[envoy.find("- name: portcullis_grpc").unwrap()..];
    assert!(cluster.contains("http2_protocol_options: {}"));
    assert!(cluster.contains("address: portcullis, port_value: 8080"));
}

#[test]
fn traefik_example_calls_the_forward_auth_front_and_strips_credentials() {
    let traefik = read("config/traefik/dynamic.yml");
    let settings = portcullis::config::Settings::from_toml("").unwrap();
    assert!(traefik.contains(&format!(
        "/{}/_/forward-auth\"",
        settings.decision.prefix.trim_start_matches('/')
    )));
    assert!(traefik.contains("authResponseHeaders:\n          - Authorization"));
    for header in [
        "Cookie",
        "X-Auth-Apikey",
        "X-Auth-Nonce",
        "X-Auth-Signature",
        "X-CSRF-Token",
    ] {
        assert!(
            traefik.contains(&format!("{header}: \"\"")),
            "{header} not stripped"
        );
    }
    // Order: the decision sees the credentials, the upstream does not.
    let decision = traefik.find("        - portcullis\n").unwrap();
    let strip = traefik.find("        - strip-credentials\n").unwrap();
    assert!(decision < strip);
}

#[tokio::test]
async fn openapi_document_lists_every_route_and_is_served() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let served = Client::new()
        .get(server.url("/api/v2/auth/swagger_doc"))
        .send()
        .await;
    assert_eq!(served.status, 200);
    let doc = served.json();
    assert_eq!(doc["openapi"], "3.0.3");
    let paths = doc["paths"].as_object().unwrap();
    for endpoint in portcullis::api::endpoints() {
        let path =
            portcullis::api::full_path(&server.app.settings, &endpoint.doc).replace("{*", "{");
        let method = endpoint.doc.method.to_ascii_lowercase();
        assert!(
            paths.get(&path).and_then(|p| p.get(&method)).is_some(),
            "{method} {path} undocumented"
        );
    }
    let login = &paths["/api/v2/auth/identity/sessions"]["post"];
    assert_eq!(
        login["requestBody"]["content"]["application/json"]["schema"]["required"],
        serde_json::json!(["email", "password"])
    );
    assert!(login["responses"]["401"].is_object());
    // Every documented operation answers something other than "route not found".
    let probe = Client::new()
        .request("DELETE", server.url("/api/v2/auth/identity/sessions"))
        .send()
        .await;
    assert_eq!(probe.status, 404);
    assert_eq!(probe.errors(), ["identity.session.not_found"]);
    let identity_only = Client::new()
        .get(server.url("/api/v2/auth/identity/swagger_doc"))
        .send()
        .await
        .json();
    assert!(
        identity_only["paths"]
            .as_object()
            .unwrap()
            .keys()
            .all(|p| p.contains("/identity/"))
    );
}
