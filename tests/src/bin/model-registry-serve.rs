//! Serves the testkit's Model Registry (the v1alpha3 REST API, Bearer auth) until killed, so
//! that scripts/pipeline-local.sh can run register end to end with no cluster:
//! `model-registry-serve TOKEN` prints the base URL on stdout.

use modelcar_testkit::model_registry::ModelRegistryServer;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, token] = args.as_slice() else {
        eprintln!("usage: model-registry-serve TOKEN");
        std::process::exit(2);
    };
    let server = ModelRegistryServer::start(token);
    println!("{}", server.url());
    loop {
        std::thread::park();
    }
}
