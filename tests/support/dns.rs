//! A tiny authoritative DNS server for tests: answers TXT questions from records the test
//! gives it, NXDOMAIN for every other name, on a free UDP port of 127.0.0.1. casegate reaches
//! it through `[authentication] dns_servers`, so no test asks a real resolver.

use std::collections::HashMap;
use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::TXT;
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// A running server; stopped when dropped.
pub struct DnsServer {
    pub port: u16,
    records: Arc<Mutex<HashMap<String, Vec<String>>>>,
    /// Every name asked for, lower case, without the final dot.
    pub asked: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DnsServer {
    pub fn start() -> DnsServer {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP port on 127.0.0.1");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let port = socket.local_addr().unwrap().port();
        let records: Arc<Mutex<HashMap<String, Vec<String>>>> = Default::default();
        let asked: Arc<Mutex<Vec<String>>> = Default::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (r, a, s) = (records.clone(), asked.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !s.load(Ordering::Relaxed) {
                let Ok((n, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(query) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let answer = respond(&query, &r.lock().unwrap(), &a);
                if let Ok(bytes) = answer.to_vec() {
                    let _ = socket.send_to(&bytes, from);
                }
            }
        });
        DnsServer {
            port,
            records,
            asked,
            stop,
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:PORT`, for `dns_servers`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Publishes a TXT record (long values are split into 255-byte strings, as DNS needs).
    pub fn txt(&self, name: &str, value: &str) {
        self.records
            .lock()
            .unwrap()
            .entry(name.trim_end_matches('.').to_ascii_lowercase())
            .or_default()
            .push(value.to_string());
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn respond(
    query: &Message,
    records: &HashMap<String, Vec<String>>,
    asked: &Mutex<Vec<String>>,
) -> Message {
    let mut answer = Message::new(query.metadata.id, MessageType::Response, OpCode::Query);
    answer.metadata.recursion_desired = query.metadata.recursion_desired;
    answer.metadata.recursion_available = true;
    answer.metadata.authoritative = true;
    let mut found_name = false;
    for q in &query.queries {
        answer.add_query(q.clone());
        let name = q
            .name()
            .to_ascii()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        asked.lock().unwrap().push(name.clone());
        if let Some(values) = records.get(&name) {
            found_name = true;
            if q.query_type() == RecordType::TXT {
                for v in values {
                    let chunks: Vec<String> = v
                        .as_bytes()
                        .chunks(255)
                        .map(|c| String::from_utf8_lossy(c).into_owned())
                        .collect();
                    answer.add_answer(Record::from_rdata(
                        Name::from_ascii(format!("{name}.")).unwrap(),
                        60,
                        RData::TXT(TXT::new(chunks)),
                    ));
                }
            }
        }
    }
    if !found_name {
        answer.metadata.response_code = ResponseCode::NXDomain;
    }
    answer
}
