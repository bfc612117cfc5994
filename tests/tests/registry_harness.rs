//! The harness itself, against the real registry: it starts, answers the distribution API,
//! enforces basic auth or bearer tokens when asked, and is gone once dropped.

use modelcar_testkit::http::{basic_auth, request, Response};
use modelcar_testkit::Registry;

#[test]
fn open_registry_answers_v2_and_stops_on_drop() {
    let registry = Registry::start();
    assert_eq!(registry.ping(None).unwrap(), 200, "{}", registry.log());
    let (host, pid) = (registry.host(), registry.pid());
    drop(registry);
    assert!(
        std::net::TcpStream::connect(&host).is_err(),
        "registry still listening on {host}"
    );
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "registry process {pid} still exists"
    );
}

#[test]
fn htpasswd_registry_demands_the_right_credentials() {
    let registry = Registry::start_with_htpasswd("alice", "s3cret");
    assert_eq!(registry.ping(None).unwrap(), 401);
    assert_eq!(registry.ping(Some(("alice", "wrong"))).unwrap(), 401);
    assert_eq!(registry.ping(Some(("alice", "s3cret"))).unwrap(), 200);
}

#[test]
fn two_registries_run_side_by_side() {
    let a = Registry::start();
    let b = Registry::start();
    assert_ne!(a.port(), b.port());
    assert_eq!(a.ping(None).unwrap(), 200);
    assert_eq!(b.ping(None).unwrap(), 200);
}

// ---- Bearer-token auth (distribution token spec) ----

/// A fixed blob and its digest (`printf 'modelcar token test blob\n' | sha256sum`).
const BLOB: &[u8] = b"modelcar token test blob\n";
const BLOB_DIGEST: &str = "sha256:9568113fce87e5fc429abdf70f2b2afd4a4f6fbf7bfd0a795dfe62fe608d89d8";

/// GET the token server's realm with basic credentials and `scopes`; the raw response.
fn fetch_token_response(
    registry: &Registry,
    user: &str,
    password: &str,
    scopes: &[&str],
) -> Response {
    let server = registry
        .token_server()
        .expect("a token registry has a token server");
    let mut path = format!("/token?service={}", server.service());
    for scope in scopes {
        path.push_str(&format!(
            "&scope={}",
            scope
                .replace(':', "%3A")
                .replace('/', "%2F")
                .replace(',', "%2C")
        ));
    }
    let auth = basic_auth(user, password);
    request(
        &server.host(),
        "GET",
        &path,
        &[("Authorization", &auth)],
        &[],
    )
    .unwrap()
}

/// A token from the registry's token server, which must issue it.
fn fetch_token(registry: &Registry, scopes: &[&str]) -> String {
    let response = fetch_token_response(registry, "bob", "t0ken-pw", scopes);
    assert_eq!(response.status, 200, "{}", response.body_text());
    let json: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(json["token"], json["access_token"]);
    assert!(json["issued_at"].as_str().unwrap().ends_with('Z'), "{json}");
    json["token"].as_str().unwrap().to_owned()
}

fn bearer_request(
    registry: &Registry,
    method: &str,
    path: &str,
    token: &str,
    body: &[u8],
) -> Response {
    let auth = format!("Bearer {token}");
    request(
        &registry.host(),
        method,
        path,
        &[("Authorization", &auth)],
        body,
    )
    .unwrap()
}

#[test]
fn token_registry_challenges_with_its_token_server() {
    let registry = Registry::start_with_token("bob", "t0ken-pw", 60);
    let server = registry.token_server().unwrap();
    assert_eq!(registry.ping(None).unwrap(), 401);
    let response = request(&registry.host(), "GET", "/v2/", &[], &[]).unwrap();
    let challenge = response.header("www-authenticate").expect("no challenge");
    assert!(
        challenge.starts_with(&format!("Bearer realm=\"{}\"", server.realm())),
        "{challenge}"
    );
    assert!(
        challenge.contains("service=\"modelcar-test-registry\""),
        "{challenge}"
    );

    let response = request(&registry.host(), "POST", "/v2/t/x/blobs/uploads/", &[], &[]).unwrap();
    let challenge = response.header("www-authenticate").expect("no challenge");
    // The registry lists the actions in Go map order: either order is right.
    assert!(
        challenge.contains("scope=\"repository:t/x:pull,push\"")
            || challenge.contains("scope=\"repository:t/x:push,pull\""),
        "{challenge}"
    );
}

#[test]
fn token_from_the_realm_opens_the_registry() {
    let registry = Registry::start_with_token("bob", "t0ken-pw", 60);
    let token = fetch_token(&registry, &["repository:t/x:pull,push"]);
    let response = bearer_request(&registry, "GET", "/v2/", &token, &[]);
    assert_eq!(
        response.status,
        200,
        "{}\n{}",
        response.body_text(),
        registry.log()
    );
    assert_eq!(registry.token_server().unwrap().tokens_issued(), 1);

    let token_host = registry.token_server().unwrap().host();
    drop(registry);
    assert!(
        std::net::TcpStream::connect(&token_host).is_err(),
        "token server still listening on {token_host}"
    );
}

#[test]
fn token_server_refuses_wrong_credentials() {
    let registry = Registry::start_with_token("bob", "t0ken-pw", 60);
    let scopes = ["repository:t/x:pull"];
    for (user, password) in [("bob", "wrong"), ("eve", "t0ken-pw")] {
        let response = fetch_token_response(&registry, user, password, &scopes);
        assert_eq!(response.status, 401, "{user}:{password}");
        assert!(response
            .header("www-authenticate")
            .unwrap()
            .starts_with("Basic "));
    }
    let server = registry.token_server().unwrap();
    let path = format!(
        "/token?service={}&scope=repository:t/x:pull",
        server.service()
    );
    assert_eq!(
        request(&server.host(), "GET", &path, &[], &[])
            .unwrap()
            .status,
        401
    );
    assert_eq!(server.tokens_issued(), 0);
}

#[test]
fn registry_rejects_an_expired_token() {
    let registry = Registry::start_with_token("bob", "t0ken-pw", 2);
    let token = fetch_token(&registry, &["repository:t/x:pull"]);
    assert_eq!(
        bearer_request(&registry, "GET", "/v2/", &token, &[]).status,
        200
    );
    std::thread::sleep(std::time::Duration::from_millis(3500));
    let response = bearer_request(&registry, "GET", "/v2/", &token, &[]);
    assert_eq!(response.status, 401, "expired token accepted");
    let fresh = fetch_token(&registry, &["repository:t/x:pull"]);
    assert_eq!(
        bearer_request(&registry, "GET", "/v2/", &fresh, &[]).status,
        200
    );
    assert_eq!(registry.token_server().unwrap().tokens_issued(), 2);
}

#[test]
fn token_access_claim_governs_blob_upload() {
    let registry = Registry::start_with_token("bob", "t0ken-pw", 60);
    let uploads = "/v2/t/x/blobs/uploads/";

    let pull_only = fetch_token(&registry, &["repository:t/x:pull"]);
    let response = bearer_request(&registry, "POST", uploads, &pull_only, &[]);
    assert_eq!(response.status, 401, "push allowed with a pull-only token");

    let other_repo = fetch_token(&registry, &["repository:t/y:pull,push"]);
    let response = bearer_request(&registry, "POST", uploads, &other_repo, &[]);
    assert_eq!(
        response.status, 401,
        "push allowed with a token for another repository"
    );

    let token = fetch_token(
        &registry,
        &["repository:c/d:pull", "repository:t/x:pull,push"],
    );
    let response = bearer_request(&registry, "POST", uploads, &token, &[]);
    assert_eq!(
        response.status,
        202,
        "{}\n{}",
        response.body_text(),
        registry.log()
    );
    let location = response.header("location").expect("upload has no Location");
    let location = location
        .strip_prefix(&format!("http://{}", registry.host()))
        .unwrap_or(location);
    let separator = if location.contains('?') { '&' } else { '?' };
    let put = format!("{location}{separator}digest={BLOB_DIGEST}");
    let response = bearer_request(&registry, "PUT", &put, &token, BLOB);
    assert_eq!(
        response.status,
        201,
        "{}\n{}",
        response.body_text(),
        registry.log()
    );

    let blob = format!("/v2/t/x/blobs/{BLOB_DIGEST}");
    let response = bearer_request(&registry, "GET", &blob, &token, &[]);
    assert_eq!((response.status, response.body.as_slice()), (200, BLOB));
    assert_eq!(registry.token_server().unwrap().tokens_issued(), 3);
}
