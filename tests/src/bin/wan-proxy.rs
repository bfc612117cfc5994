//! Runs the testkit's WAN link in front of a registry until killed, for `scripts/bench.sh
//! wan`: `wan-proxy UPSTREAM RTT_MS MBIT_PER_CONNECTION MBIT_TOTAL` prints its host:port.

use std::time::Duration;

use modelcar_testkit::wan_proxy::{Link, WanProxy};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let parsed = match args.as_slice() {
        [_, upstream, rtt, per, total] => rtt
            .parse::<u64>()
            .ok()
            .zip(per.parse::<u64>().ok())
            .zip(total.parse::<u64>().ok())
            .map(|((rtt, per), total)| (upstream.clone(), rtt, per, total)),
        _ => None,
    };
    let Some((upstream, rtt, per, total)) = parsed else {
        eprintln!("usage: wan-proxy UPSTREAM RTT_MS MBIT_PER_CONNECTION MBIT_TOTAL");
        std::process::exit(2);
    };
    let link = Link {
        rtt: Duration::from_millis(rtt),
        per_connection: per * 1_000_000 / 8,
        total: total * 1_000_000 / 8,
    };
    let proxy = WanProxy::start(&upstream, link);
    println!("{}", proxy.host());
    loop {
        std::thread::park();
    }
}
