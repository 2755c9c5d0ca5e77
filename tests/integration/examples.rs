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
    // Envoy appends the real peer to X-Forwarded-For instead of passing the client's own.
    assert!(envoy.contains("use_remote_address: true"));
    // Portcullis never reads the body: Envoy need not buffer it.
    assert!(!envoy.contains("with_request_body"));
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
    assert!(envoy.contains("use_remote_address: true"));
    assert!(!envoy.contains("whatever failure_mode_allow says"));
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
    // Traefik sets the original URI and method from the real request, never from the client.
    assert!(traefik.contains("trustForwardHeader: false"));
    assert!(!traefik.contains("trustForwardHeader: true"));
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
    let settings = &server.app.settings;
    for doc in portcullis::server::router::docs(settings) {
        let path = portcullis::routes::full_path(settings, &doc).replace("{*", "{");
        let method = doc.method.to_ascii_lowercase();
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
        .request("DELETE", server.identity("sessions"))
        .send()
        .await;
    assert_eq!(probe.status, 404);
    assert_eq!(probe.errors(), ["identity.session.not_found"]);
    let identity_only = Client::new()
        .get(server.identity("swagger_doc"))
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

/// The demo stack trusts nginx by its exact address only, never a whole network (Docker's
/// gateway, through which published-port clients arrive, sits in it), and never silently runs
/// on development keys.
#[test]
fn docker_compose_trusts_only_its_proxy() {
    let compose = read("docker-compose.yml");
    let line = compose
        .lines()
        .find(|l| l.contains("PORTCULLIS_NETWORK__TRUSTED_PROXIES"))
        .expect("the compose file names the trusted proxy");
    assert!(line.contains("/32"), "{line}");
    assert!(compose.contains("ipv4_address: 172.28.0.10"));
    assert!(line.contains("172.28.0.10/32"), "{line}");
    assert!(compose.contains(r#"command: ["--dev", "serve"]"#));
}

/// The demo stack runs two nodes behind nginx, on one set of development keys made once
/// before either starts (two nodes with keys of their own would refuse each other's tokens and
/// sealed secrets).
#[test]
fn docker_compose_runs_two_nodes_on_shared_keys() {
    let compose = read("docker-compose.yml");
    for node in ["portcullis-a:", "portcullis-b:"] {
        assert!(
            compose.contains(&format!("\n  {node}\n    <<: *portcullis")),
            "{node}"
        );
    }
    assert_eq!(compose.matches("aliases: [portcullis]").count(), 2);
    assert!(compose.contains("portcullis --dev keys init"));
    assert!(compose.contains("condition: service_completed_successfully"));
    assert!(compose.contains("- portcullis:/app/var"));
    let nginx = read("config/nginx/portcullis.conf");
    assert!(nginx.contains("server portcullis:8080;"));
}

/// Barong's API document (seed 002: identity, resource and admin) is the contract: every
/// operation it lists is in our served OpenAPI document, under our mount.
#[tokio::test]
async fn every_operation_of_barongs_api_document_is_served() {
    let env = TestEnv::new().await;
    let server = env.start().await;
    let doc = Client::new()
        .get(server.url("/api/v2/auth/swagger_doc"))
        .send()
        .await
        .json();
    let paths = doc["paths"].as_object().unwrap();
    let seed = std::fs::read_to_string(crate::support::repo_path(
        "tests/data/seeds/barong_api_2.4.17.txt",
    ))
    .unwrap();
    let mut path = None;
    let mut operations = Vec::new();
    for line in seed.lines() {
        if line == "# Models" {
            break;
        }
        if let Some(p) = line.strip_prefix("# /") {
            // The document writes `{kid }`, and cuts `{uid}` to `{uid`.
            let p = p.replace(" }", "}");
            let p = if p.matches('{').count() > p.matches('}').count() {
                format!("{p}}}")
            } else {
                p
            };
            path = Some(p);
        } else if let (Some(method), Some(p)) = (line.strip_prefix('#'), &path)
            && ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&method)
        {
            operations.push((method.to_ascii_lowercase(), format!("/api/v2/auth/{p}")));
        }
    }
    assert!(
        operations.len() >= 70,
        "{} operations read",
        operations.len()
    );
    let missing: Vec<String> = operations
        .iter()
        .filter(|(method, path)| paths.get(path).and_then(|p| p.get(method)).is_none())
        .map(|(method, path)| format!("{method} {path}"))
        .collect();
    assert!(missing.is_empty(), "not served: {missing:#?}");
}
