//! HTTP endpoints with OpenEnv's semantics (`/reset`, `/step` and `/state`
//! are stateless, as in OpenEnv ≥ 0.2.1: sessions live on `/ws`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::wire;
use super::ws::{make_env, run_session, Core};
use super::EnvService;

type Svc = State<Arc<EnvService>>;

pub(crate) fn router(svc: Arc<EnvService>) -> Router {
    let limit = svc.config.max_message_bytes;
    Router::new()
        .route("/ws", get(ws_upgrade))
        .route("/health", get(health))
        .route("/metadata", get(metadata))
        .route("/schema", get(schema))
        .route("/openapi.json", get(openapi))
        .route("/reset", post(reset))
        .route("/step", post(step))
        .route("/state", get(state))
        .route("/mcp", post(mcp))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(svc)
}

async fn ws_upgrade(ws: WebSocketUpgrade, State(svc): Svc) -> Response {
    let limit = svc.config.max_message_bytes;
    ws.max_message_size(limit)
        .max_frame_size(limit)
        .read_buffer_size(4 << 10)
        .on_upgrade(move |socket| run_session(socket, svc))
}

async fn health() -> Json<Value> {
    Json(json!({"status": "healthy"}))
}

async fn metadata(State(svc): Svc) -> Json<Value> {
    let mut readme = format!("# {}\n\n{}\n\nServed by `gym serve`.\n", svc.spec.id, svc.spec.description);
    if !svc.spec.options.is_empty() {
        readme.push_str("\n## Options (pass them to `reset`)\n\n");
        for o in &svc.spec.options {
            readme.push_str(&format!("* `{}` ({}; default `{}`): {}\n", o.name, o.kind, o.default, o.help));
        }
    }
    Json(json!({
        "name": svc.env_id,
        "description": svc.spec.description,
        "readme_content": readme,
        "version": svc.spec.version.to_string(),
        "author": "gym",
        "documentation_url": null,
        "max_steps": svc.spec.max_steps,
        "options": svc.options.to_map(),
        "max_sessions": svc.config.max_sessions,
    }))
}

async fn schema(State(svc): Svc) -> Json<Value> {
    Json(json!({
        "action": wire::action_schema(svc.spec.action_ids.as_ref()),
        "observation": wire::observation_schema(svc.spec.action_ids.as_ref()),
        "state": wire::state_schema(),
    }))
}

async fn openapi(State(svc): Svc) -> Json<Value> {
    Json(wire::openapi(&svc.env_id, svc.spec.action_ids.as_ref()))
}

fn unprocessable(errors: Vec<Value>) -> Response {
    (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "detail": errors }))).into_response()
}

/// Parses an optional JSON body; `Err` carries the 422 error list.
fn parse_body(body: &Bytes) -> Result<Value, Vec<Value>> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(body)
        .map_err(|e| vec![wire::err_item("json_invalid", &["body"], &format!("JSON decode error: {e}"), &Value::Null)])
}

/// Runs `f` on a fresh env on the blocking pool; turns the frame it
/// returns into an HTTP response (200 with the observation `data`, 422 for
/// validation errors, 500 for env errors).
async fn on_fresh_env(
    svc: Arc<EnvService>,
    f: impl FnOnce(&Arc<EnvService>, &mut Core) -> String + Send + 'static,
) -> Response {
    let joined = tokio::task::spawn_blocking(move || {
        let env = make_env(&svc.maker)?;
        let mut core = Core::new(env);
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&svc, &mut core))).ok()
    })
    .await;
    let Ok(Some(frame)) = joined else {
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"detail": "env panicked"}))).into_response();
    };
    let v: Value = serde_json::from_str(&frame).unwrap_or(Value::Null);
    match v["type"].as_str() {
        Some("observation") => Json(v["data"].clone()).into_response(),
        _ => {
            let code = v["data"]["code"].as_str().unwrap_or("");
            if code == wire::ErrorCode::ValidationError.as_str() {
                unprocessable(v["data"]["errors"].as_array().cloned().unwrap_or_default())
            } else {
                (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"detail": v["data"]["message"], "code": code})))
                    .into_response()
            }
        }
    }
}

async fn reset(State(svc): Svc, body: Bytes) -> Response {
    let v = match parse_body(&body) {
        Ok(v) => v,
        Err(e) => return unprocessable(e),
    };
    let req = match wire::parse_reset(&v, &svc.option_names()) {
        Ok(r) => r,
        Err(e) => return unprocessable(e),
    };
    on_fresh_env(svc, move |svc, core| core.reset(svc, req).into_frame()).await
}

async fn step(State(svc): Svc, body: Bytes) -> Response {
    let v = match parse_body(&body) {
        Ok(v) => v,
        Err(e) => return unprocessable(e),
    };
    let Some(action) = v.get("action") else {
        return unprocessable(vec![wire::err_item("missing", &["body", "action"], "Field required", &v)]);
    };
    let action = match wire::parse_action(action, svc.spec.action_ids.as_ref()) {
        Ok(a) => a,
        Err(e) => return unprocessable(e),
    };
    let mut reset = v.clone();
    if let Some(o) = reset.as_object_mut() {
        o.remove("action");
        o.remove("timeout_s");
        o.remove("request_id");
    }
    let mut req = match wire::parse_reset(&reset, &svc.option_names()) {
        Ok(r) => r,
        Err(e) => return unprocessable(e),
    };
    req.seed = Some(req.seed.unwrap_or(0));
    on_fresh_env(svc, move |svc, core| {
        let r = core.reset(svc, req);
        if r.is_error() {
            return r.into_frame();
        }
        core.step(svc, action).into_frame()
    })
    .await
}

async fn state(State(svc): Svc) -> Response {
    let maker = svc.maker.clone();
    let s2 = svc.clone();
    match tokio::task::spawn_blocking(move || make_env(&maker).map(|env| Core::new(env).state(&s2))).await {
        Ok(Some(v)) => Json(v).into_response(),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"detail": "env constructor failed"}))).into_response(),
    }
}

async fn mcp(body: Bytes) -> Json<Value> {
    match serde_json::from_slice::<Value>(&body) {
        Ok(v) => Json(wire::mcp_reply(&v)),
        Err(e) => Json(
            json!({"jsonrpc": "2.0", "id": null, "error": {"code": -32700, "message": format!("Parse error: {e}")}}),
        ),
    }
}
