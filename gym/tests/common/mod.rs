//! Shared helpers for gym's integration tests: a small test env, an
//! in-process server, a WebSocket client and a raw HTTP client.
#![allow(dead_code, missing_docs)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use envs::{Action, Env, EnvError, EnvSpec, Message, Observation, OptionKind, OptionSpec, Registry, Step, StepInfo};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use serve::{EnvService, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMsg;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// A tiny env: guess `seed % 3 + 1` each step; `steps` steps per episode.
/// Replies `error` make the step fail, `panic` panics; `delay_ms` slows
/// every step; `fail=true` makes the factory fail; `image=true` attaches a PNG.
pub struct Guess {
    seed: u64,
    t: usize,
    steps: usize,
    delay_ms: u64,
    image: bool,
    reset: bool,
    over: bool,
}

const PNG_1X1: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0D, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00,
    0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

impl Guess {
    fn obs(&self) -> Observation {
        Observation {
            messages: vec![
                Message::system("Reply with one of 1, 2 or 3."),
                Message::user(format!("round {} of {}: which number?", self.t + 1, self.steps)),
            ],
            images: if self.image { vec![PNG_1X1.to_vec()] } else { Vec::new() },
            state: json!({"round": self.t, "steps": self.steps}),
            legal_actions: vec!["1".into(), "2".into(), "3".into()],
        }
    }
}

impl Env for Guess {
    fn reset(&mut self, seed: u64) -> Result<Observation, EnvError> {
        self.seed = seed;
        self.t = 0;
        self.reset = true;
        self.over = false;
        Ok(self.obs())
    }

    fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        if !self.reset {
            return Err(EnvError::NotReset);
        }
        if self.over {
            return Err(EnvError::EpisodeOver);
        }
        if self.delay_ms > 0 {
            std::thread::sleep(Duration::from_millis(self.delay_ms));
        }
        match action.text.trim() {
            "error" => return Err(EnvError::Other("the env was asked to fail".into())),
            "panic" => panic!("the env was asked to panic"),
            _ => {}
        }
        let target = (self.seed.wrapping_add(self.t as u64) % 3 + 1).to_string();
        let mut info = StepInfo::default();
        let hit = action.text.trim() == target;
        info.term("match", Some(if hit { 1.0 } else { 0.0 }), 1.0);
        if !["1", "2", "3"].contains(&action.text.trim()) {
            info.reason = Some("reply is not 1, 2 or 3".into());
        }
        self.t += 1;
        let terminated = self.t >= self.steps;
        if terminated {
            info.success = Some(hit);
        }
        self.over = terminated;
        Ok(Step::new(self.obs(), info, terminated, false))
    }

    fn demonstration(&self) -> Option<Action> {
        (self.reset && !self.over).then(|| Action::text((self.seed.wrapping_add(self.t as u64) % 3 + 1).to_string()))
    }
}

/// A registry holding only `guess`.
pub fn test_registry() -> Registry {
    let mut r = Registry::new();
    r.register(
        EnvSpec {
            id: "guess",
            version: 1,
            description: "Guess a number from 1 to 3 each round (test env)",
            max_steps: 100,
            options: vec![
                OptionSpec { name: "steps", kind: OptionKind::Int { min: 1, max: 100 }, default: "3", help: "rounds" },
                OptionSpec {
                    name: "delay_ms",
                    kind: OptionKind::Int { min: 0, max: 60_000 },
                    default: "0",
                    help: "sleep per step",
                },
                OptionSpec { name: "fail", kind: OptionKind::Bool, default: "false", help: "factory fails" },
                OptionSpec { name: "image", kind: OptionKind::Bool, default: "false", help: "attach a PNG" },
            ],
            ..EnvSpec::default()
        },
        |o| {
            if o.bool("fail") {
                return Err(EnvError::Other("factory asked to fail".into()));
            }
            let (steps, delay_ms, image) = (o.int("steps") as usize, o.int("delay_ms") as u64, o.bool("image"));
            Ok(Arc::new(move || {
                Box::new(Guess { seed: 0, t: 0, steps, delay_ms, image, reset: false, over: false }) as Box<dyn Env>
            }))
        },
    );
    r
}

/// A running in-process server.
pub struct Server {
    pub addr: SocketAddr,
    pub svc: Arc<EnvService>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.addr)
    }
    /// Starts graceful shutdown.
    pub fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// Starts a server for `env` of `registry` on a free loopback port.
pub async fn start_with(registry: Registry, env: &str, opts: &[&str], config: ServerConfig) -> Server {
    let svc = EnvService::new(registry, env, opts, config).expect("valid env");
    let listener = serve::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve::serve_on(listener, svc.clone(), async move {
        let _ = rx.await;
    }));
    Server { addr, svc, stop: Some(tx), task }
}

/// Starts a `guess` server.
pub async fn start(opts: &[&str], config: ServerConfig) -> Server {
    start_with(test_registry(), "guess", opts, config).await
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub async fn connect(s: &Server) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(s.ws_url()).await.expect("connect");
    ws
}

pub async fn send(ws: &mut Ws, v: Value) {
    ws.send(WsMsg::text(v.to_string())).await.expect("send");
}

pub async fn send_raw(ws: &mut Ws, m: WsMsg) {
    ws.send(m).await.expect("send");
}

/// The next data frame as JSON (pings/pongs skipped); `None` when closed.
pub async fn recv(ws: &mut Ws) -> Option<Value> {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(20), ws.next()).await.expect("reply within 20 s");
        match m {
            Some(Ok(WsMsg::Text(t))) => return Some(serde_json::from_str(t.as_str()).expect("reply is JSON")),
            Some(Ok(WsMsg::Binary(_))) => panic!("server sent a binary frame"),
            Some(Ok(WsMsg::Ping(_) | WsMsg::Pong(_) | WsMsg::Frame(_))) => continue,
            Some(Ok(WsMsg::Close(_))) | None | Some(Err(_)) => return None,
        }
    }
}

/// Sends a request and returns its reply.
pub async fn call(ws: &mut Ws, v: Value) -> Value {
    send(ws, v).await;
    recv(ws).await.expect("a reply")
}

/// Reads until the server's close frame and returns its code (`None` if the
/// connection ended without one).
pub async fn close_code(ws: &mut Ws) -> Option<u16> {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(20), ws.next()).await.expect("a frame within 20 s");
        match m {
            Some(Ok(WsMsg::Close(frame))) => return frame.map(|f| u16::from(f.code)),
            Some(Ok(_)) => continue,
            None | Some(Err(_)) => return None,
        }
    }
}

/// Asserts the socket is closed (no further data frame).
pub async fn assert_closed(ws: &mut Ws) {
    assert_eq!(recv(ws).await, None, "expected the server to close the socket");
}

/// A minimal HTTP/1.1 request; returns (status, JSON body).
pub async fn http(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let body = body.unwrap_or("");
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf)).await.expect("timely").expect("read");
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").expect("http response");
    let status: u16 = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).expect("status");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Resident memory of this process in KiB (Linux).
pub fn rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines().find(|l| l.starts_with("VmRSS:"))?.split_whitespace().nth(1)?.parse().ok()
}

/// Runs gym with `input` on standard input; returns (success, stdout, stderr).
pub fn gym_with_input(args: &[&str], input: &str) -> (bool, String, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_gym"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("gym runs");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    std::io::Write::write_all(&mut stdin, input.as_bytes()).expect("write stdin");
    drop(stdin);
    let out = child.wait_with_output().expect("gym finishes");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}
