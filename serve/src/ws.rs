//! The `/ws` session: OpenEnv's lock-step protocol, one env per connection.

use std::collections::{BTreeMap, VecDeque};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use envs::{Env, EnvError, EnvMaker, RegistryError};
use serde_json::{json, Map, Value};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::wire::{self, error_frame, ErrorCode};
use super::EnvService;

/// Requests a client may pipeline while a step runs before the server gives up on it.
const MAX_QUEUED: usize = 64;

/// What a session owns between requests; moved onto a blocking thread for
/// reset and step.
pub(crate) struct Core {
    env: Box<dyn Env>,
    overrides: Vec<(String, String)>,
    episode_id: Option<String>,
    seed: Option<u64>,
    step_count: u64,
    done: bool,
    total_reward: f64,
}

/// A reply, or an error frame (`closes` tells whether the session ends).
pub(crate) struct Reply {
    frame: String,
    closes: bool,
    error: bool,
}

impl Reply {
    fn ok(frame: String) -> Self {
        Self { frame, closes: false, error: false }
    }
    fn err(code: ErrorCode, message: &str, extra: Map<String, Value>) -> Self {
        Self { frame: error_frame(code, message, extra), closes: code.closes(), error: true }
    }
    /// The frame's text.
    pub(crate) fn into_frame(self) -> String {
        self.frame
    }
    /// Whether this is an error frame.
    pub(crate) fn is_error(&self) -> bool {
        self.error
    }
    fn validation(errors: Vec<Value>) -> Self {
        let mut extra = Map::new();
        extra.insert("errors".into(), Value::Array(errors));
        Self::err(ErrorCode::ValidationError, "Invalid message", extra)
    }
}

fn registry_reply(svc: &EnvService, e: RegistryError) -> Reply {
    match e {
        RegistryError::Build { .. } => {
            let mut extra = Map::new();
            extra.insert("factory_name".into(), json!(svc.env_id));
            Reply::err(ErrorCode::FactoryError, &e.to_string(), extra)
        }
        other => Reply::validation(vec![wire::err_item("value_error", &[], &other.to_string(), &Value::Null)]),
    }
}

impl Core {
    pub(crate) fn new(env: Box<dyn Env>) -> Self {
        Self { env, overrides: Vec::new(), episode_id: None, seed: None, step_count: 0, done: false, total_reward: 0.0 }
    }

    /// `reset`: rebuilds the env if the options changed, then resets it.
    pub(crate) fn reset(&mut self, svc: &EnvService, req: wire::ResetRequest) -> Reply {
        if req.options != self.overrides {
            match svc.maker_with(&req.options) {
                Ok(maker) => match make_env(&maker) {
                    Some(env) => self.env = env,
                    None => return factory_panic(svc),
                },
                Err(e) => return registry_reply(svc, e),
            }
            self.overrides = req.options;
        }
        let seed = req.seed.unwrap_or_else(rand::random);
        let episode_id = req.episode_id.unwrap_or_else(wire::new_episode_id);
        match self.env.reset(seed) {
            Ok(obs) => {
                self.seed = Some(seed);
                self.step_count = 0;
                self.done = false;
                self.total_reward = 0.0;
                let meta = wire::reset_metadata(&svc.env_id, &episode_id, seed);
                self.episode_id = Some(episode_id);
                let o = wire::observation_json(&obs, svc.spec.action_ids.as_ref(), false, true, &meta);
                Reply::ok(json!({"type": "observation", "data": wire::observation_data(o, None, false)}).to_string())
            }
            Err(e) => Reply::err(ErrorCode::ExecutionError, &e.to_string(), Map::new()),
        }
    }

    /// `step`.
    pub(crate) fn step(&mut self, svc: &EnvService, action: envs::Action) -> Reply {
        match self.env.step(&action) {
            Ok(step) => {
                self.step_count += 1;
                self.done = step.done();
                self.total_reward += step.reward;
                let meta = wire::step_metadata(
                    &step,
                    self.step_count,
                    self.episode_id.as_deref().unwrap_or(""),
                    self.seed.unwrap_or(0),
                );
                let o =
                    wire::observation_json(&step.observation, svc.spec.action_ids.as_ref(), step.done(), false, &meta);
                let data = wire::observation_data(o, Some(step.reward), step.done());
                Reply::ok(json!({"type": "observation", "data": data}).to_string())
            }
            Err(e @ (EnvError::NotReset | EnvError::EpisodeOver)) => {
                Reply::err(ErrorCode::ExecutionError, &e.to_string(), Map::new())
            }
            Err(e) => Reply::err(ErrorCode::ExecutionError, &e.to_string(), Map::new()),
        }
    }

    /// The `state` payload.
    pub(crate) fn state(&self, svc: &EnvService) -> Value {
        let mut options: BTreeMap<String, String> = svc.options.to_map();
        for (k, v) in &self.overrides {
            options.insert(k.clone(), v.clone());
        }
        json!({
            "episode_id": self.episode_id,
            "step_count": self.step_count,
            "env": svc.env_id,
            "seed": self.seed,
            "done": self.done,
            "total_reward": self.total_reward,
            "options": options,
        })
    }
}

/// Builds an env, turning a panicking constructor into `None`.
pub(crate) fn make_env(maker: &EnvMaker) -> Option<Box<dyn Env>> {
    std::panic::catch_unwind(AssertUnwindSafe(|| maker())).ok()
}

/// Builds an env with the service's maker, timing it for [`EnvService::run_inline`].
fn timed_make(svc: &EnvService) -> Option<Box<dyn Env>> {
    let t0 = std::time::Instant::now();
    let env = make_env(&svc.maker);
    svc.record_duration(super::JobKind::Make, t0.elapsed());
    env
}

fn factory_panic(svc: &EnvService) -> Reply {
    let mut extra = Map::new();
    extra.insert("factory_name".into(), json!(svc.env_id));
    Reply::err(ErrorCode::FactoryError, &format!("env `{}` constructor panicked", svc.env_id), extra)
}

enum Job {
    Reset(wire::ResetRequest),
    Step(envs::Action),
}

type Running = JoinHandle<(Option<Core>, Reply)>;

enum Dispatch {
    Now(Reply),
    Close,
    Run(Running),
}

/// Handles one text frame.
fn dispatch(svc: &Arc<EnvService>, core: &mut Option<Core>, text: Utf8Bytes) -> Dispatch {
    let v: Value = match serde_json::from_str(text.as_str()) {
        Ok(v) => v,
        Err(e) => return Dispatch::Now(Reply::err(ErrorCode::InvalidJson, &format!("Invalid JSON: {e}"), Map::new())),
    };
    let Some(obj) = v.as_object() else {
        return Dispatch::Now(Reply::validation(vec![wire::err_item(
            "model_type",
            &[],
            "A message must be a JSON object with a `type`",
            &v,
        )]));
    };
    let ty = match obj.get("type") {
        Some(Value::String(t)) => t.as_str(),
        other => {
            let input = other.cloned().unwrap_or(Value::Null);
            return Dispatch::Now(Reply::validation(vec![wire::err_item(
                "missing",
                &["type"],
                "Field `type` (a string) is required",
                &input,
            )]));
        }
    };
    let data = obj.get("data").cloned().unwrap_or(Value::Null);
    let job = match ty {
        "close" => return Dispatch::Close,
        "state" => {
            let Some(c) = core.as_ref() else {
                return Dispatch::Now(Reply::err(ErrorCode::SessionError, "session lost its env", Map::new()));
            };
            return Dispatch::Now(Reply::ok(json!({"type": "state", "data": c.state(svc)}).to_string()));
        }
        "mcp" => return Dispatch::Now(Reply::ok(json!({"type": "mcp", "data": wire::mcp_reply(&data)}).to_string())),
        "reset" => match wire::parse_reset(&data, &svc.option_names()) {
            Ok(r) => Job::Reset(r),
            Err(errs) => return Dispatch::Now(Reply::validation(errs)),
        },
        "step" => {
            let data = if data.is_null() { Value::Object(Map::new()) } else { data };
            match wire::parse_action(&data, svc.spec.action_ids.as_ref()) {
                Ok(a) => Job::Step(a),
                Err(errs) => return Dispatch::Now(Reply::validation(errs)),
            }
        }
        other => {
            return Dispatch::Now(Reply::err(
                ErrorCode::UnknownType,
                &format!("Unknown message type: {other}"),
                Map::new(),
            ))
        }
    };
    let Some(c) = core.take() else {
        return Dispatch::Now(Reply::err(ErrorCode::SessionError, "session lost its env", Map::new()));
    };
    let kind = match job {
        Job::Reset(_) => super::JobKind::Reset,
        Job::Step(_) => super::JobKind::Step,
    };
    if svc.run_inline(kind) {
        // This env's steps are known to be fast: a thread hand-off would
        // cost more than the step.
        let (c, reply) = execute(svc, c, job);
        *core = c;
        return Dispatch::Now(reply);
    }
    let svc = svc.clone();
    Dispatch::Run(tokio::task::spawn_blocking(move || execute(&svc, c, job)))
}

/// Runs a reset or step, timing it for [`EnvService::run_inline`]; a panic
/// loses the env and becomes a `SESSION_ERROR`.
fn execute(svc: &EnvService, mut c: Core, job: Job) -> (Option<Core>, Reply) {
    let t0 = std::time::Instant::now();
    let kind = match job {
        Job::Reset(_) => super::JobKind::Reset,
        Job::Step(_) => super::JobKind::Step,
    };
    let r = std::panic::catch_unwind(AssertUnwindSafe(|| match job {
        Job::Reset(req) => c.reset(svc, req),
        Job::Step(a) => c.step(svc, a),
    }));
    svc.record_duration(kind, t0.elapsed());
    match r {
        Ok(reply) => (Some(c), reply),
        Err(p) => {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            (None, Reply::err(ErrorCode::SessionError, &format!("env panicked: {what}"), Map::new()))
        }
    }
}

async fn send(socket: &mut WebSocket, frame: String) -> bool {
    socket.send(Message::Text(frame.into())).await.is_ok()
}

/// Whether a receive error is a frame or message over the size limit.
fn too_big(e: &axum::Error) -> bool {
    use std::error::Error;
    matches!(e.source().and_then(|s| s.downcast_ref::<tungstenite::Error>()), Some(tungstenite::Error::Capacity(_)))
}

async fn close(mut socket: WebSocket, code: u16, reason: &str) {
    let _ = socket.send(Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
}

/// Runs one WebSocket session to its end.
pub(crate) async fn run_session(mut socket: WebSocket, svc: Arc<EnvService>) {
    let guard = match svc.try_acquire() {
        Ok(g) => g,
        Err(active) => {
            let max = svc.config.max_sessions;
            let mut extra = Map::new();
            extra.insert("active_sessions".into(), json!(active));
            extra.insert("max_sessions".into(), json!(max));
            let msg = if *svc.shutdown.borrow() {
                "Server is shutting down. Cannot accept new connections.".to_string()
            } else {
                format!("Server at capacity: {active}/{max} sessions active. Cannot accept new connections.")
            };
            let _ = send(&mut socket, error_frame(ErrorCode::CapacityReached, &msg, extra)).await;
            close(socket, 1013, "server at capacity").await;
            return;
        }
    };
    let built = if svc.run_inline(super::JobKind::Make) {
        Ok(timed_make(&svc))
    } else {
        let s2 = svc.clone();
        tokio::task::spawn_blocking(move || timed_make(&s2)).await
    };
    let env = match built {
        Ok(Some(env)) => env,
        _ => {
            let _ = send(&mut socket, factory_panic(&svc).frame).await;
            close(socket, 1011, "env constructor failed").await;
            return;
        }
    };
    let mut core = Some(Core::new(env));
    let mut running: Option<Running> = None;
    let mut queue: VecDeque<Utf8Bytes> = VecDeque::new();
    let mut shutdown = svc.shutdown.subscribe();
    let mut stopping = *shutdown.borrow();
    let mut closing = false;
    let idle = svc.config.idle_timeout;
    let mut last_request = Instant::now();
    let mut close_code = (1000u16, "");
    let idle_timer = tokio::time::sleep(idle.unwrap_or(Duration::from_secs(365 * 24 * 3600)));
    tokio::pin!(idle_timer);

    'session: loop {
        while running.is_none() && !closing {
            let Some(msg) = queue.pop_front() else { break };
            match dispatch(&svc, &mut core, msg) {
                Dispatch::Now(r) => {
                    if !send(&mut socket, r.frame).await {
                        break 'session;
                    }
                    if r.closes {
                        close_code = (1011, "session error");
                        break 'session;
                    }
                }
                Dispatch::Close => closing = true,
                Dispatch::Run(h) => running = Some(h),
            }
        }
        if running.is_none() && (closing || stopping) {
            if stopping && !closing {
                close_code = (1001, "server shutting down");
            }
            break;
        }
        tokio::select! {
            biased;
            done = async { match running.as_mut() { Some(h) => Some(h.await), None => None } }, if running.is_some() => {
                running = None;
                match done {
                    Some(Ok((c, reply))) => {
                        core = c;
                        if !send(&mut socket, reply.frame).await {
                            break;
                        }
                        if reply.closes {
                            close_code = (1011, "session error");
                            break;
                        }
                    }
                    _ => {
                        let r = Reply::err(ErrorCode::SessionError, "env task failed", Map::new());
                        let _ = send(&mut socket, r.frame).await;
                        close_code = (1011, "session error");
                        break;
                    }
                }
            }
            _ = shutdown.changed(), if !stopping => {
                stopping = true;
            }
            msg = socket.recv() => {
                match msg {
                    Some(Err(e)) if too_big(&e) => {
                        // Over `max_message_bytes`: the frame is dropped unread
                        // and the session closed with "message too big".
                        close_code = (1009, "message too big");
                        break;
                    }
                    None | Some(Err(_)) => {
                        // The client vanished (or sent an invalid frame).
                        if let Some(h) = running.take() {
                            let _ = h.await;
                        }
                        return;
                    }
                    Some(Ok(Message::Text(t))) => {
                        if !(closing || stopping) {
                            last_request = Instant::now();
                            queue.push_back(t);
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        // The protocol is JSON in text frames; a binary frame is
                        // refused whatever it holds ("unsupported data").
                        close_code = (1003, "binary frames are not supported: send JSON as text");
                        break;
                    }
                    Some(Ok(Message::Close(_))) => {
                        if let Some(h) = running.take() {
                            let _ = h.await;
                        }
                        return;
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                }
                if queue.len() > MAX_QUEUED {
                    let msg = format!("more than {MAX_QUEUED} requests pipelined; the protocol is lock-step");
                    let _ = send(&mut socket, error_frame(ErrorCode::SessionError, &msg, Map::new())).await;
                    close_code = (1008, "too many pipelined requests");
                    break;
                }
            }
            _ = &mut idle_timer, if running.is_none() && idle.is_some() => {
                // One timer per idle period, not one per message: re-arm it
                // from the last request, and close only when really idle.
                let due = last_request + idle.unwrap_or_default();
                if Instant::now() >= due {
                    close_code = (1000, "idle timeout");
                    break;
                }
                idle_timer.as_mut().reset(due);
            }
        }
    }
    if let Some(h) = running.take() {
        let _ = h.await;
    }
    close(socket, close_code.0, close_code.1).await;
    drop(guard);
}
