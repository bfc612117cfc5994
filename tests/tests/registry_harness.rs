//! The harness itself, against the real registry: it starts, answers the distribution API,
//! enforces basic auth when asked, and is gone once dropped.

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
