//! Serves a directory as a Hugging Face Hub model repo (the testkit's HubServer) until killed,
//! so that tools outside the test suite (`hf download`, fetch-model) can be timed against the
//! same server: `hub-serve DIR ORG/NAME` prints the endpoint on stdout.

use std::path::Path;

use modelcar_testkit::{HubRepo, HubServer};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, dir, repo] = args.as_slice() else {
        eprintln!("usage: hub-serve DIR ORG/NAME");
        std::process::exit(2);
    };
    let mut hub_repo = HubRepo::new(repo);
    for path in files(Path::new(dir)) {
        let relative = path
            .strip_prefix(dir)
            .expect("under DIR")
            .to_string_lossy()
            .into_owned();
        let bytes =
            std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        hub_repo = hub_repo.file(&relative, bytes);
    }
    let server = HubServer::start(vec![hub_repo]);
    println!("{}", server.endpoint());
    loop {
        std::thread::park();
    }
}

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read DIR") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}
