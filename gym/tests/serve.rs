//! `gym serve` protocol conformance and robustness, from a Rust WebSocket
//! client (tokio-tungstenite) on loopback.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use serve::ServerConfig;
use tokio_tungstenite::tungstenite::Message as WsMsg;

fn cfg() -> ServerConfig {
    ServerConfig::default()
}

fn code(v: &Value) -> &str {
    assert_eq!(v["type"], "error", "expected an error frame, got {v}");
    v["data"]["code"].as_str().expect("code")
}

#[tokio::test]
async fn full_episode_lock_step() {
    let s = start(&[], cfg()).await;
    let mut ws = connect(&s).await;
    let r =
        call(&mut ws, json!({"type": "reset", "data": {"seed": 42, "episode_id": "ep-001", "unknown_kw": 1}})).await;
    assert_eq!(r["type"], "observation");
    let d = &r["data"];
    assert_eq!(d["reward"], Value::Null);
    assert_eq!(d["done"], false);
    assert!(d["observation"]["prompt"].as_str().unwrap().contains("round 1 of 3"));
    assert_eq!(d["observation"]["legal_actions"], json!(["1", "2", "3"]));
    assert_eq!(d["observation"]["messages"][0]["role"], "system");
    assert_eq!(d["observation"]["metadata"]["episode_id"], "ep-001");
    assert_eq!(d["metadata"], d["observation"]["metadata"], "metadata also at the top level");
    let st = call(&mut ws, json!({"type": "state"})).await;
    assert_eq!(st["type"], "state");
    assert_eq!(st["data"]["episode_id"], "ep-001");
    assert_eq!(st["data"]["step_count"], 0);
    assert_eq!(st["data"]["seed"], 42);
    let mut total = 0.0;
    for t in 0..3u64 {
        let target = ((42 + t) % 3 + 1).to_string();
        let r = call(&mut ws, json!({"type": "step", "data": {"message": target}})).await;
        assert_eq!(r["type"], "observation");
        let reward = r["data"]["reward"].as_f64().expect("reward is a number");
        assert!(r["data"]["reward"].is_f64(), "reward must be a float, not a bool/int");
        total += reward;
        assert_eq!(r["data"]["done"], t == 2);
        assert_eq!(r["data"]["metadata"]["reward_breakdown"][0]["name"], "match");
        let st = call(&mut ws, json!({"type": "state"})).await;
        assert_eq!(st["data"]["step_count"], t + 1);
    }
    assert_eq!(total, 3.0);
    // Stepping a finished episode is an execution error; the connection stays.
    let e = call(&mut ws, json!({"type": "step", "data": {"text": "1"}})).await;
    assert_eq!(code(&e), "EXECUTION_ERROR");
    assert_eq!(call(&mut ws, json!({"type": "state"})).await["data"]["done"], true);
    // close: no reply, the server closes.
    send(&mut ws, json!({"type": "close"})).await;
    assert_closed(&mut ws).await;
}

#[tokio::test]
async fn same_seed_same_episode_and_fresh_ids() {
    let s = start(&[], cfg()).await;
    let mut a = connect(&s).await;
    let mut b = connect(&s).await;
    let ra = call(&mut a, json!({"type": "reset", "data": {"seed": 7}})).await;
    let rb = call(&mut b, json!({"type": "reset", "data": {"seed": 7}})).await;
    assert_eq!(ra["data"]["observation"]["prompt"], rb["data"]["observation"]["prompt"]);
    let ea = ra["data"]["metadata"]["episode_id"].as_str().unwrap().to_string();
    let eb = rb["data"]["metadata"]["episode_id"].as_str().unwrap().to_string();
    assert_ne!(ea, eb, "minted episode ids are unique");
    let sa = call(&mut a, json!({"type": "step", "data": {"message": "2"}})).await;
    let sb = call(&mut b, json!({"type": "step", "data": {"message": "2"}})).await;
    assert_eq!(sa["data"]["reward"], sb["data"]["reward"]);
    // A reset without a seed still reports the seed it used.
    let r = call(&mut a, json!({"type": "reset"})).await;
    assert!(r["data"]["metadata"]["seed"].is_u64());
}

#[tokio::test]
async fn errors_that_keep_the_connection() {
    let s = start(&[], cfg()).await;
    let mut ws = connect(&s).await;
    // step before reset
    let e = call(&mut ws, json!({"type": "step", "data": {"message": "1"}})).await;
    assert_eq!(code(&e), "EXECUTION_ERROR");
    assert!(e["data"]["message"].as_str().unwrap().contains("before reset"));
    send_raw(&mut ws, WsMsg::text("this is {not json")).await;
    let e = recv(&mut ws).await.unwrap();
    assert_eq!(code(&e), "INVALID_JSON");
    assert!(e["data"]["message"].as_str().unwrap().starts_with("Invalid JSON"));
    let e = call(&mut ws, json!({"type": "dance"})).await;
    assert_eq!(code(&e), "UNKNOWN_TYPE");
    assert_eq!(e["data"]["message"], "Unknown message type: dance");
    let e = call(&mut ws, json!({"data": {}})).await;
    assert_eq!(code(&e), "VALIDATION_ERROR");
    let e = call(&mut ws, json!([1, 2])).await;
    assert_eq!(code(&e), "VALIDATION_ERROR");
    call(&mut ws, json!({"type": "reset", "data": {"seed": 1}})).await;
    let e = call(&mut ws, json!({"type": "step", "data": {"mesage": "1"}})).await;
    assert_eq!(code(&e), "VALIDATION_ERROR");
    assert_eq!(e["data"]["message"], "Invalid message");
    assert_eq!(e["data"]["errors"][0]["type"], "extra_forbidden");
    let e = call(&mut ws, json!({"type": "step", "data": {"message": 5}})).await;
    assert_eq!(code(&e), "VALIDATION_ERROR");
    let e = call(&mut ws, json!({"type": "reset", "data": {"seed": -3}})).await;
    assert_eq!(code(&e), "VALIDATION_ERROR");
    let e = call(&mut ws, json!({"type": "reset", "data": {"steps": "many"}})).await;
    assert_eq!(code(&e), "VALIDATION_ERROR", "a bad option value");
    let e = call(&mut ws, json!({"type": "step", "data": {"message": "error"}})).await;
    assert_eq!(code(&e), "EXECUTION_ERROR");
    assert_eq!(e["data"]["message"], "the env was asked to fail");
    // MCP: gym envs have no tools.
    let m = call(&mut ws, json!({"type": "mcp", "data": {"jsonrpc": "2.0", "method": "tools/list", "id": 1}})).await;
    assert_eq!(m["type"], "mcp");
    assert_eq!(m["data"]["result"]["tools"], json!([]));
    // Still serving this session after every error.
    let r = call(&mut ws, json!({"type": "step", "data": {"message": "2"}})).await;
    assert_eq!(r["type"], "observation");
}

#[tokio::test]
async fn session_error_closes_and_server_survives() {
    let s = start(&[], cfg()).await;
    let mut ws = connect(&s).await;
    call(&mut ws, json!({"type": "reset", "data": {"seed": 1}})).await;
    let e = call(&mut ws, json!({"type": "step", "data": {"message": "panic"}})).await;
    assert_eq!(code(&e), "SESSION_ERROR");
    assert_closed(&mut ws).await;
    let mut ws = connect(&s).await;
    assert_eq!(call(&mut ws, json!({"type": "reset"})).await["type"], "observation");
}

#[tokio::test]
async fn factory_error_closes() {
    let s = start(&[], cfg()).await;
    let mut ws = connect(&s).await;
    let e = call(&mut ws, json!({"type": "reset", "data": {"fail": true}})).await;
    assert_eq!(code(&e), "FACTORY_ERROR");
    assert_eq!(e["data"]["factory_name"], "guess");
    assert_closed(&mut ws).await;
}

#[tokio::test]
async fn reset_options_override_per_episode() {
    let s = start(&["steps=5"], cfg()).await;
    let mut ws = connect(&s).await;
    call(&mut ws, json!({"type": "reset", "data": {"seed": 3, "steps": 1}})).await;
    assert_eq!(call(&mut ws, json!({"type": "state"})).await["data"]["options"]["steps"], "1");
    let r = call(&mut ws, json!({"type": "step", "data": {"message": "1"}})).await;
    assert_eq!(r["data"]["done"], true);
    call(&mut ws, json!({"type": "reset", "data": {"seed": 3}})).await;
    assert_eq!(call(&mut ws, json!({"type": "state"})).await["data"]["options"]["steps"], "5");
    let r = call(&mut ws, json!({"type": "step", "data": {"message": "1"}})).await;
    assert_eq!(r["data"]["done"], false);
}

#[tokio::test]
async fn capacity_limit() {
    let s = start(&[], ServerConfig { max_sessions: 2, ..cfg() }).await;
    let mut a = connect(&s).await;
    let mut b = connect(&s).await;
    call(&mut a, json!({"type": "reset"})).await;
    call(&mut b, json!({"type": "reset"})).await;
    let mut c = connect(&s).await;
    let e = recv(&mut c).await.expect("capacity frame");
    assert_eq!(code(&e), "CAPACITY_REACHED");
    assert_eq!(e["data"]["active_sessions"], 2);
    assert_eq!(e["data"]["max_sessions"], 2);
    assert_eq!(e["data"]["message"], "Server at capacity: 2/2 sessions active. Cannot accept new connections.");
    assert_closed(&mut c).await;
    send(&mut a, json!({"type": "close"})).await;
    assert_closed(&mut a).await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.svc.active_sessions() > 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut d = connect(&s).await;
    assert_eq!(call(&mut d, json!({"type": "reset"})).await["type"], "observation");
    assert_eq!(call(&mut b, json!({"type": "state"})).await["type"], "state");
}

#[tokio::test]
async fn pings_are_answered_during_a_slow_step() {
    let s = start(&["delay_ms=1500"], cfg()).await;
    let mut ws = connect(&s).await;
    call(&mut ws, json!({"type": "reset", "data": {"seed": 1}})).await;
    send(&mut ws, json!({"type": "step", "data": {"message": "1"}})).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let t0 = Instant::now();
    ws.send(WsMsg::Ping(b"alive?".to_vec().into())).await.unwrap();
    // The pong must come back long before the step's reply.
    match tokio::time::timeout(Duration::from_secs(10), ws.next()).await.unwrap() {
        Some(Ok(WsMsg::Pong(p))) => assert_eq!(&p[..], b"alive?"),
        other => panic!("expected the pong first, got {other:?}"),
    }
    assert!(t0.elapsed() < Duration::from_millis(700), "pong took {:?}", t0.elapsed());
    let r = recv(&mut ws).await.unwrap();
    assert_eq!(r["type"], "observation");
}

#[tokio::test]
async fn pipelined_requests_get_one_reply_each_in_order() {
    let s = start(&[], cfg()).await;
    let mut ws = connect(&s).await;
    send(&mut ws, json!({"type": "reset", "data": {"seed": 5, "episode_id": "p"}})).await;
    send(&mut ws, json!({"type": "step", "data": {"message": "1"}})).await;
    send(&mut ws, json!({"type": "bogus"})).await;
    send(&mut ws, json!({"type": "state"})).await;
    assert_eq!(recv(&mut ws).await.unwrap()["type"], "observation");
    let st = recv(&mut ws).await.unwrap();
    assert_eq!(st["data"]["metadata"]["step_count"], 1);
    assert_eq!(code(&recv(&mut ws).await.unwrap()), "UNKNOWN_TYPE");
    let st = recv(&mut ws).await.unwrap();
    assert_eq!(st["data"]["episode_id"], "p");
    assert_eq!(st["data"]["step_count"], 1);
    // And nothing unsolicited follows.
    let extra = tokio::time::timeout(Duration::from_millis(300), ws.next()).await;
    assert!(extra.is_err(), "unsolicited frame: {extra:?}");
}

#[tokio::test]
async fn binary_frames_close_the_session_with_1003() {
    let s = start(&[], cfg()).await;
    let mut other = connect(&s).await;
    call(&mut other, json!({"type": "reset"})).await;
    // Even JSON in a binary frame: the protocol is text frames.
    for payload in [json!({"type": "state"}).to_string().into_bytes(), vec![0xff, 0xfe, 0x00]] {
        let mut ws = connect(&s).await;
        call(&mut ws, json!({"type": "reset"})).await;
        send_raw(&mut ws, WsMsg::binary(payload)).await;
        assert_eq!(close_code(&mut ws).await, Some(1003));
    }
    assert_eq!(call(&mut other, json!({"type": "state"})).await["type"], "state");
}

#[tokio::test]
async fn a_frame_just_over_the_limit_is_closed_with_1009() {
    let s = start(&[], ServerConfig { max_message_bytes: 1 << 20, ..cfg() }).await;
    let mut ws = connect(&s).await;
    call(&mut ws, json!({"type": "reset"})).await;
    let big = "x".repeat((1 << 20) + 16);
    send_raw(&mut ws, WsMsg::text(big)).await;
    assert_eq!(close_code(&mut ws).await, Some(1009));
}

#[tokio::test]
async fn oversized_frames_close_only_that_session() {
    let s = start(&[], ServerConfig { max_message_bytes: 1 << 20, ..cfg() }).await;
    let mut other = connect(&s).await;
    call(&mut other, json!({"type": "reset"})).await;
    let mut ws = connect(&s).await;
    let big = "x".repeat(2 << 20);
    // The server may close before the client finishes sending; both are clean.
    let _ = ws.send(WsMsg::text(json!({"type": "step", "data": {"message": big}}).to_string())).await;
    assert_closed(&mut ws).await;
    assert_eq!(call(&mut other, json!({"type": "state"})).await["type"], "state");
}

#[tokio::test]
async fn accepts_17_mib_messages_by_default() {
    let s = start(&[], cfg()).await;
    let mut ws = connect(&s).await;
    call(&mut ws, json!({"type": "reset", "data": {"seed": 1}})).await;
    let big = "y".repeat(17 << 20);
    let r = call(&mut ws, json!({"type": "step", "data": {"message": big}})).await;
    assert_eq!(r["type"], "observation");
    assert_eq!(r["data"]["reward"], 0.0);
    assert_eq!(r["data"]["metadata"]["reason"], "reply is not 1, 2 or 3");
}

#[tokio::test]
async fn vanished_client_mid_step_frees_its_session() {
    let s = start(&["delay_ms=300"], cfg()).await;
    let mut ws = connect(&s).await;
    call(&mut ws, json!({"type": "reset"})).await;
    send(&mut ws, json!({"type": "step", "data": {"message": "1"}})).await;
    drop(ws);
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.svc.active_sessions() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(s.svc.active_sessions(), 0);
    let mut ws = connect(&s).await;
    assert_eq!(call(&mut ws, json!({"type": "reset"})).await["type"], "observation");
}

#[tokio::test]
async fn idle_sessions_time_out() {
    let s = start(&[], ServerConfig { idle_timeout: Some(Duration::from_millis(300)), ..cfg() }).await;
    let mut ws = connect(&s).await;
    call(&mut ws, json!({"type": "reset"})).await;
    let t0 = Instant::now();
    assert_closed(&mut ws).await;
    assert!(t0.elapsed() >= Duration::from_millis(250));
    assert_eq!(s.svc.active_sessions(), 0);
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_steps() {
    let mut s = start(&["delay_ms=500"], cfg()).await;
    let mut ws = connect(&s).await;
    let mut idle = connect(&s).await;
    call(&mut ws, json!({"type": "reset"})).await;
    call(&mut idle, json!({"type": "reset"})).await;
    send(&mut ws, json!({"type": "step", "data": {"message": "1"}})).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    s.stop();
    let r = recv(&mut ws).await.expect("the in-flight step is answered");
    assert_eq!(r["type"], "observation");
    assert_closed(&mut ws).await;
    assert_closed(&mut idle).await;
    tokio::time::timeout(Duration::from_secs(10), &mut s.task).await.expect("server stops").unwrap().unwrap();
    assert!(tokio::net::TcpStream::connect(s.addr).await.is_err(), "no longer listening");
}

#[tokio::test]
async fn http_endpoints() {
    let s = start(&["image=true"], cfg()).await;
    let (st, v) = http(s.addr, "GET", "/health", None).await;
    assert_eq!((st, v["status"].as_str()), (200, Some("healthy")));
    let (st, v) = http(s.addr, "GET", "/metadata", None).await;
    assert_eq!(st, 200);
    assert_eq!(v["name"], "guess");
    assert!(v["description"].is_string());
    let (st, v) = http(s.addr, "GET", "/schema", None).await;
    assert_eq!(st, 200);
    for k in ["action", "observation", "state"] {
        assert!(v[k].is_object(), "{k}");
    }
    let (st, v) = http(s.addr, "GET", "/openapi.json", None).await;
    assert_eq!(st, 200);
    assert!(v["info"]["version"].as_str().unwrap().starts_with("1."));
    for p in ["/reset", "/step", "/state"] {
        assert!(v["paths"][p].is_object(), "{p}");
    }
    let (st, v) = http(s.addr, "POST", "/mcp", Some("{}")).await;
    assert_eq!((st, v["jsonrpc"].as_str()), (200, Some("2.0")));
    assert!(v["error"].is_object());
    let (st, v) = http(s.addr, "POST", "/reset", Some(r#"{"seed": 4, "episode_id": "h"}"#)).await;
    assert_eq!(st, 200);
    assert_eq!(v["done"], false);
    assert_eq!(v["reward"], Value::Null);
    assert_eq!(v["observation"]["metadata"]["episode_id"], "h");
    assert_eq!(v["observation"]["image_mime_type"], "image/png");
    let png = v["observation"]["images"][0].as_str().unwrap();
    assert!(png.starts_with("iVBORw0KGgo"), "base64 PNG");
    let (st, _) = http(s.addr, "POST", "/reset", None).await;
    assert_eq!(st, 200, "an empty body is fine");
    let (st, v) =
        http(s.addr, "POST", "/step", Some(r#"{"action": {"message": "2"}, "seed": 4, "timeout_s": 5}"#)).await;
    assert_eq!(st, 200);
    assert_eq!(v["reward"], 1.0, "seed 4 wants 2: {v}");
    let (st, v) = http(s.addr, "POST", "/step", Some(r#"{"action": {"bad": 1}}"#)).await;
    assert_eq!(st, 422);
    assert_eq!(v["detail"][0]["loc"], json!(["bad"]));
    let (st, _) = http(s.addr, "POST", "/step", Some(r#"{"action": {"message": "error"}}"#)).await;
    assert_eq!(st, 500);
    let (st, _) = http(s.addr, "POST", "/step", Some("not json")).await;
    assert_eq!(st, 422);
    let (st, v) = http(s.addr, "GET", "/state", None).await;
    assert_eq!(st, 200);
    assert_eq!(v["step_count"], 0);
    assert_eq!(v["episode_id"], Value::Null);
}

/// 1,000 concurrent sessions, each reset and stepped while all are held
/// open; memory per session stays bounded and every session is freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_sessions_bounded_memory() {
    serve::raise_fd_limit();
    const N: usize = 1000;
    let s = start(&["steps=2"], cfg()).await;
    let before = rss_kib();
    let t0 = Instant::now();
    let mut socks = Vec::with_capacity(N);
    for chunk in 0..N / 100 {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..100u64 {
            let url = s.ws_url();
            set.spawn(async move {
                let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("connect");
                let seed = (chunk as u64) * 100 + i;
                let r = call(&mut ws, json!({"type": "reset", "data": {"seed": seed}})).await;
                assert_eq!(r["type"], "observation");
                let r = call(&mut ws, json!({"type": "step", "data": {"message": "1"}})).await;
                assert_eq!(r["type"], "observation");
                ws
            });
        }
        while let Some(ws) = set.join_next().await {
            socks.push(ws.expect("session task"));
        }
    }
    assert_eq!(s.svc.active_sessions(), N);
    let after = rss_kib();
    // Every held session still answers.
    for ws in socks.iter_mut().step_by(50) {
        assert_eq!(call(ws, json!({"type": "state"})).await["data"]["step_count"], 1);
    }
    if let (Some(b), Some(a)) = (before, after) {
        let per = a.saturating_sub(b) as f64 / N as f64;
        eprintln!("{N} sessions in {:?}: RSS {b} -> {a} KiB ({per:.1} KiB/session, client+server)", t0.elapsed());
        // RSS includes the test's own client and allocator slack; 320 KiB
        // leaves room for a loaded CI machine (typically 150–250 KiB).
        assert!(per < 320.0, "memory per session (client + server) is {per:.1} KiB");
    }
    drop(socks);
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.svc.active_sessions() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(s.svc.active_sessions(), 0, "every session freed");
}
