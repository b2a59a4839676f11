//! The one HTTP request streamlab makes itself: a GET to a local engine's status endpoint (a
//! Spark master's `/json/`, a Flink JobManager's REST API) to know it is up. Plain HTTP/1.0 on
//! a TCP socket: no client library for a readiness probe on loopback.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::time::Duration;

/// The body of `GET path` on `127.0.0.1:port`, or `None` while nothing answers there.
pub fn get(port: u16, path: &str) -> Option<String> {
    let mut conn = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).ok()?;
    conn.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    conn.write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").as_bytes())
        .ok()?;
    let mut response = String::new();
    conn.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.").then(|| body.to_string())
}

/// A free TCP port on loopback now (bound and released; the engine binds it right after).
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}
