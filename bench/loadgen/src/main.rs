//! Load generator for `bench/serve`: N threads, each with one keep-alive connection to a `serve`
//! IMDS endpoint, each taking its own IMDSv2 token and then sending credential GETs one after the
//! other (the way an SDK's connection pool does), until the total is reached.
//!
//! Prints one JSON line: requests, errors (any answer but 200, or a 200 without credentials),
//! seconds, requests per second, p50/p99/max latency in microseconds. Latency is measured per
//! request from the first byte written to the last byte of the body read. Standard library only.
//!
//! Usage: serve-loadgen ADDR ROLE CONNECTIONS TOTAL

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: serve-loadgen ADDR ROLE CONNECTIONS TOTAL");
        std::process::exit(2);
    }
    let addr = args[1].clone();
    let role = args[2].clone();
    let conns: usize = args[3].parse().expect("CONNECTIONS");
    let total: u64 = args[4].parse().expect("TOTAL");
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let workers: Vec<_> = (0..conns)
        .map(|_| {
            let (addr, role, next) = (addr.clone(), role.clone(), next.clone());
            std::thread::spawn(move || worker(&addr, &role, &next, total))
        })
        .collect();
    let mut latencies = Vec::new();
    let mut errors = 0u64;
    for w in workers {
        let (l, e) = w.join().expect("worker panicked");
        latencies.extend(l);
        errors += e;
    }
    let secs = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pct = |p: f64| -> u64 {
        if latencies.is_empty() {
            return 0;
        }
        let i = ((latencies.len() as f64) * p).ceil() as usize;
        u64::from(latencies[i.clamp(1, latencies.len()) - 1])
    };
    let n = latencies.len() as u64;
    println!(
        "{{\"requests\":{n},\"errors\":{errors},\"seconds\":{secs:.3},\"rps\":{:.0},\"p50_us\":{},\"p99_us\":{},\"max_us\":{}}}",
        n as f64 / secs,
        pct(0.50),
        pct(0.99),
        latencies.last().copied().unwrap_or(0)
    );
}

/// One answer: status and body.
fn answer(r: &mut BufReader<TcpStream>) -> std::io::Result<(u16, Vec<u8>)> {
    let mut line = String::new();
    r.read_line(&mut line)?;
    let status = line
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
    let mut len = 0usize;
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Err(std::io::Error::other("closed in the head"));
        }
        if line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().map_err(std::io::Error::other)?;
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body)?;
    Ok((status, body))
}

fn worker(addr: &str, role: &str, next: &AtomicU64, total: u64) -> (Vec<u32>, u64) {
    let mut latencies = Vec::with_capacity((total / 8) as usize);
    let mut errors = 0;
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut w = stream.try_clone().expect("clone");
    let mut r = BufReader::new(stream);
    w.write_all(b"PUT /latest/api/token HTTP/1.1\r\nHost: bench\r\nX-aws-ec2-metadata-token-ttl-seconds: 21600\r\n\r\n")
        .expect("put");
    let (status, token) = answer(&mut r).expect("token answer");
    assert_eq!(status, 200, "token: {}", String::from_utf8_lossy(&token));
    let request = format!(
        "GET /latest/meta-data/iam/security-credentials/{role} HTTP/1.1\r\nHost: bench\r\n\
         X-aws-ec2-metadata-token: {}\r\n\r\n",
        String::from_utf8_lossy(&token)
    );
    while next.fetch_add(1, Ordering::Relaxed) < total {
        let t = Instant::now();
        w.write_all(request.as_bytes()).expect("write");
        match answer(&mut r) {
            Ok((200, body)) if body.windows(12).any(|x| x == b"\"AccessKeyId") => {}
            Ok(_) => errors += 1,
            Err(e) => panic!("request failed: {e}"),
        }
        latencies.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
    }
    (latencies, errors)
}
