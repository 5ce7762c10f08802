//! OpenEnv wire formats: parsing actions and reset requests, building
//! observation/state/error payloads, and the JSON Schemas and OpenAPI
//! document the server publishes.

use base64::Engine as _;
use envs::{Action, ActionIds, Observation, Step};
use serde_json::{json, Map, Value};

/// OpenEnv error codes sent in `{"type":"error"}` frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The frame is not JSON (connection stays open).
    InvalidJson,
    /// The `type` is not one the server knows (connection stays open).
    UnknownType,
    /// The envelope or the action failed validation (connection stays open).
    ValidationError,
    /// The env failed in reset/step/state (connection stays open).
    ExecutionError,
    /// The server is full (one frame, then close).
    CapacityReached,
    /// The env could not be built (closes).
    FactoryError,
    /// Any other session failure (closes).
    SessionError,
}

impl ErrorCode {
    /// The code as sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "INVALID_JSON",
            ErrorCode::UnknownType => "UNKNOWN_TYPE",
            ErrorCode::ValidationError => "VALIDATION_ERROR",
            ErrorCode::ExecutionError => "EXECUTION_ERROR",
            ErrorCode::CapacityReached => "CAPACITY_REACHED",
            ErrorCode::FactoryError => "FACTORY_ERROR",
            ErrorCode::SessionError => "SESSION_ERROR",
        }
    }

    /// Whether the server closes the connection after sending this error.
    pub fn closes(self) -> bool {
        matches!(self, ErrorCode::CapacityReached | ErrorCode::FactoryError | ErrorCode::SessionError)
    }
}

/// An `{"type":"error"}` frame with extra keys in `data`.
pub fn error_frame(code: ErrorCode, message: &str, extra: Map<String, Value>) -> String {
    let mut data = Map::new();
    data.insert("message".into(), Value::String(message.to_string()));
    data.insert("code".into(), Value::String(code.as_str().into()));
    data.extend(extra);
    json!({"type": "error", "data": data}).to_string()
}

/// One pydantic-style validation error item (`type`, `loc`, `msg`, `input`).
pub fn err_item(kind: &str, loc: &[&str], msg: &str, input: &Value) -> Value {
    json!({"type": kind, "loc": loc, "msg": msg, "input": input})
}

const ACTION_KEYS: [&str; 4] = ["message", "text", "action_id", "metadata"];

/// Parses an action (the `data` of a WebSocket `step`, or the `action` of
/// `POST /step`). Unknown keys are rejected, as OpenEnv's `extra="forbid"`.
pub fn parse_action(data: &Value, ids: Option<&ActionIds>) -> Result<Action, Vec<Value>> {
    let Some(obj) = data.as_object() else {
        return Err(vec![err_item("model_type", &[], "Input should be an object", data)]);
    };
    let mut errors = Vec::new();
    for k in obj.keys() {
        if !ACTION_KEYS.contains(&k.as_str()) {
            errors.push(err_item("extra_forbidden", &[k], "Extra inputs are not permitted", &obj[k]));
        }
    }
    if let Some(m) = obj.get("metadata") {
        if !m.is_object() {
            errors.push(err_item("dict_type", &["metadata"], "Input should be a valid dictionary", m));
        }
    }
    let mut text: Option<String> = None;
    for key in ["message", "text"] {
        match obj.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => {
                if text.as_deref().is_some_and(|t| t != s) {
                    errors.push(err_item("value_error", &[key], "`message` and `text` disagree; send one", &obj[key]));
                }
                text = Some(s.clone());
            }
            Some(v) => errors.push(err_item("string_type", &[key], "Input should be a valid string", v)),
        }
    }
    let mut structured = None;
    match obj.get("action_id") {
        None | Some(Value::Null) => {}
        Some(v) => match v.as_u64() {
            Some(id) if ids.is_some_and(|a| a.reply_for(id).is_none()) => {
                let names = ids.map(|a| a.names).unwrap_or_default();
                let valid: Vec<String> = names.iter().enumerate().map(|(i, n)| format!("{i} ({n})")).collect();
                let msg = format!("action_id must be one of {}", valid.join(", "));
                errors.push(err_item("less_than_equal", &["action_id"], &msg, v))
            }
            Some(id) => {
                if text.is_none() {
                    text = Some(ids.and_then(|a| a.reply_for(id)).unwrap_or_else(|| id.to_string()));
                }
                structured = Some(json!({ "action_id": id }));
            }
            None => errors.push(err_item("int_type", &["action_id"], "Input should be a non-negative integer", v)),
        },
    }
    if errors.is_empty() && text.is_none() {
        errors.push(err_item(
            "missing",
            &["message"],
            "Field required: send `message` (or `text`) with the reply, or `action_id`",
            data,
        ));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Action { text: text.unwrap_or_default(), structured })
}

/// A parsed reset request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResetRequest {
    /// The env seed (`None`: the server draws one).
    pub seed: Option<u64>,
    /// The episode id (`None`: the server mints one).
    pub episode_id: Option<String>,
    /// Env options given in the request, `name=value` (only names the env declares).
    pub options: Vec<(String, String)>,
}

/// Parses a reset request: `seed`, `episode_id`, and env option overrides.
/// Other keys are ignored, as OpenEnv drops kwargs `reset()` does not take.
pub fn parse_reset(data: &Value, option_names: &[&str]) -> Result<ResetRequest, Vec<Value>> {
    let empty = Map::new();
    let obj = match data {
        Value::Null => &empty,
        Value::Object(o) => o,
        other => return Err(vec![err_item("model_type", &[], "Input should be an object", other)]),
    };
    let mut req = ResetRequest::default();
    let mut errors = Vec::new();
    match obj.get("seed") {
        None | Some(Value::Null) => {}
        Some(v) => match v.as_u64() {
            Some(s) => req.seed = Some(s),
            None => errors.push(err_item("int_type", &["seed"], "seed must be an integer >= 0", v)),
        },
    }
    match obj.get("episode_id") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if s.len() <= 255 => req.episode_id = Some(s.clone()),
        Some(v) => {
            errors.push(err_item("string_type", &["episode_id"], "episode_id must be a string of <= 255 bytes", v))
        }
    }
    for (k, v) in obj {
        if !option_names.contains(&k.as_str()) {
            continue;
        }
        let s = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                errors.push(err_item("string_type", &[k], "env options are strings, numbers or booleans", other));
                continue;
            }
        };
        req.options.push((k.clone(), s));
    }
    if errors.is_empty() {
        Ok(req)
    } else {
        Err(errors)
    }
}

/// Builds the `observation` object of a reply.
pub fn observation_json(
    obs: &Observation,
    ids: Option<&ActionIds>,
    done: bool,
    fresh: bool,
    metadata: &Map<String, Value>,
) -> Value {
    let mut o = Map::new();
    o.insert("prompt".into(), Value::String(obs.text().to_string()));
    o.insert("messages".into(), serde_json::to_value(&obs.messages).unwrap_or(Value::Null));
    o.insert("state".into(), obs.state.clone());
    match ids {
        None => {
            o.insert("legal_actions".into(), json!(obs.legal_actions));
        }
        Some(a) => {
            let legal: Vec<u64> = if done {
                Vec::new()
            } else {
                let mut ids: Vec<u64> = obs.legal_actions.iter().filter_map(|l| a.id_of(l)).collect();
                ids.sort_unstable();
                ids.dedup();
                ids
            };
            o.insert("legal_actions".into(), json!(legal));
            o.insert("legal_moves".into(), json!(obs.legal_actions));
            if let Some(cells) = a.board_field.and_then(|f| board_cells(obs.state.get(f)?)) {
                o.insert("info_state".into(), json!(cells));
            }
            let phase = if done {
                "terminal"
            } else if fresh {
                "initial"
            } else {
                "playing"
            };
            o.insert("game_phase".into(), json!(phase));
            o.insert("current_player_id".into(), json!(0));
            o.insert("opponent_last_action".into(), Value::Null);
        }
    }
    if !obs.images.is_empty() {
        let b64: Vec<String> =
            obs.images.iter().map(|png| base64::engine::general_purpose::STANDARD.encode(png)).collect();
        o.insert("images".into(), json!(b64));
        o.insert("image_mime_type".into(), json!("image/png"));
    }
    o.insert("metadata".into(), Value::Object(metadata.clone()));
    Value::Object(o)
}

/// A board as raw cell values (OpenSpiel's `info_state`): rows of numbers
/// or a flat list.
fn board_cells(board: &Value) -> Option<Vec<f64>> {
    let mut out = Vec::new();
    for v in board.as_array()? {
        match v {
            Value::Array(row) => {
                for c in row {
                    out.push(c.as_f64()?);
                }
            }
            other => out.push(other.as_f64()?),
        }
    }
    Some(out)
}

/// Metadata of a step: the reward breakdown and why.
pub fn step_metadata(step: &Step, step_count: u64, episode_id: &str, seed: u64) -> Map<String, Value> {
    let mut m = Map::new();
    let breakdown: Vec<Value> = step
        .info
        .breakdown
        .iter()
        .map(|t| json!({"name": t.name, "value": t.value, "weight": t.weight, "contribution": t.contribution()}))
        .collect();
    m.insert("reward_breakdown".into(), Value::Array(breakdown));
    if let Some(r) = &step.info.reason {
        m.insert("reason".into(), json!(r));
    }
    if let Some(s) = step.info.success {
        m.insert("success".into(), json!(s));
    }
    if !step.info.extra.is_empty() {
        m.insert("extra".into(), Value::Object(step.info.extra.clone()));
    }
    m.insert("terminated".into(), json!(step.terminated));
    m.insert("truncated".into(), json!(step.truncated));
    m.insert("step_count".into(), json!(step_count));
    m.insert("episode_id".into(), json!(episode_id));
    m.insert("seed".into(), json!(seed));
    m
}

/// Metadata of a reset.
pub fn reset_metadata(env_id: &str, episode_id: &str, seed: u64) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("env".into(), json!(env_id));
    m.insert("episode_id".into(), json!(episode_id));
    m.insert("seed".into(), json!(seed));
    m.insert("step_count".into(), json!(0));
    m
}

/// The `data` of an observation reply: `observation`, `reward`, `done`,
/// plus the metadata again at the top level (OpenEnv 0.10.0 reads it there).
pub fn observation_data(observation: Value, reward: Option<f64>, done: bool) -> Value {
    let meta = observation.get("metadata").filter(|m| m.as_object().is_some_and(|o| !o.is_empty())).cloned();
    let reward = reward.filter(|r| r.is_finite()).map_or(Value::Null, |r| json!(r));
    let mut d = Map::new();
    d.insert("observation".into(), observation);
    d.insert("reward".into(), reward);
    d.insert("done".into(), Value::Bool(done));
    if let Some(m) = meta {
        d.insert("metadata".into(), m);
    }
    Value::Object(d)
}

/// A fresh uuid4-formatted episode id.
pub fn new_episode_id() -> String {
    let b: u128 = rand::random();
    let b = ((b & !(0xF000u128 << 64)) | (0x4000u128 << 64)) & !(0xC000u128 << 48);
    let b = b | (0x8000u128 << 48);
    let h = format!("{b:032x}");
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// JSON Schema of the action.
pub fn action_schema(ids: Option<&ActionIds>) -> Value {
    let mut props = json!({
        "message": {"type": "string", "description": "The model's reply."},
        "text": {"type": "string", "description": "Alias of `message`."},
        "metadata": {"type": "object", "additionalProperties": true},
    });
    let id_schema = match ids {
        Some(a) => {
            let moves: Vec<String> = a.names.iter().enumerate().map(|(i, n)| format!("{i} {n}")).collect();
            json!({"type": "integer", "minimum": 0, "maximum": a.names.len().saturating_sub(1),
                "description": format!("Move: {}.", moves.join(", "))})
        }
        None => json!({"type": "integer", "minimum": 0,
            "description": "A structured action id, passed to the env as {\"action_id\": n}."}),
    };
    props["action_id"] = id_schema;
    json!({"title": "GymAction", "type": "object", "properties": props, "additionalProperties": false,
        "anyOf": [{"required": ["message"]}, {"required": ["text"]}, {"required": ["action_id"]}]})
}

/// JSON Schema of the observation (the observation fields plus `reward` and `done`).
pub fn observation_schema(ids: Option<&ActionIds>) -> Value {
    let legal = match ids {
        None => json!({"type": "array", "items": {"type": "string"}}),
        Some(a) => json!({"type": "array", "items": {"type": "integer", "minimum": 0,
            "maximum": a.names.len().saturating_sub(1)}}),
    };
    json!({
        "title": "GymObservation",
        "type": "object",
        "properties": {
            "prompt": {"type": "string", "description": "The text of the last user message."},
            "messages": {"type": "array", "items": {"type": "object", "properties": {
                "role": {"type": "string", "enum": ["system", "user", "assistant"]},
                "content": {"type": "string"}}, "required": ["role", "content"]}},
            "state": {"description": "Structured state for scripted policies."},
            "legal_actions": legal,
            "legal_moves": {"type": "array", "items": {"type": "string"}},
            "info_state": {"type": "array", "items": {"type": "number"}},
            "game_phase": {"type": "string", "enum": ["initial", "playing", "terminal"]},
            "current_player_id": {"type": "integer"},
            "opponent_last_action": {"type": ["integer", "null"]},
            "images": {"type": "array", "items": {"type": "string", "contentEncoding": "base64"}},
            "image_mime_type": {"type": "string"},
            "metadata": {"type": "object", "additionalProperties": true},
            "reward": {"type": ["number", "null"]},
            "done": {"type": "boolean"}
        },
        "additionalProperties": false
    })
}

/// JSON Schema of the state.
pub fn state_schema() -> Value {
    json!({
        "title": "GymState",
        "type": "object",
        "properties": {
            "episode_id": {"type": ["string", "null"]},
            "step_count": {"type": "integer", "minimum": 0},
            "env": {"type": "string"},
            "seed": {"type": ["integer", "null"], "minimum": 0},
            "done": {"type": "boolean"},
            "total_reward": {"type": "number"},
            "options": {"type": "object", "additionalProperties": {"type": "string"}}
        },
        "required": ["episode_id", "step_count"],
        "additionalProperties": true
    })
}

/// The OpenAPI document (`info.version` 1.0.0, the simulation-mode paths).
pub fn openapi(env_id: &str, ids: Option<&ActionIds>) -> Value {
    let obj = |s: Value| json!({"content": {"application/json": {"schema": s}}});
    let reply = json!({"type": "object", "properties": {
        "observation": {"$ref": "#/components/schemas/GymObservation"},
        "reward": {"type": ["number", "null"]}, "done": {"type": "boolean"},
        "metadata": {"type": "object"}}, "required": ["observation", "reward", "done"]});
    let ok = |s: Value| json!({"200": {"description": "OK", "content": {"application/json": {"schema": s}}}});
    let mut step_responses = ok(reply.clone());
    step_responses["422"] = json!({"description": "Validation Error"});
    step_responses["500"] = json!({"description": "Environment error"});
    json!({
        "openapi": "3.1.0",
        "info": {"title": "OpenEnv Environment HTTP API", "version": "1.0.0",
            "description": format!("gym serve: env `{env_id}` over the OpenEnv protocol (WebSocket /ws is the session channel).")},
        "paths": {
            "/reset": {"post": {"summary": "Reset a fresh env (stateless)", "requestBody": obj(json!({"type": "object",
                "properties": {"seed": {"type": ["integer", "null"], "minimum": 0},
                "episode_id": {"type": ["string", "null"], "maxLength": 255}}, "additionalProperties": true})),
                "responses": ok(reply.clone())}},
            "/step": {"post": {"summary": "Step a fresh env reset with `seed` (default 0) (stateless)",
                "requestBody": obj(json!({"type": "object", "properties": {
                    "action": {"$ref": "#/components/schemas/GymAction"},
                    "seed": {"type": ["integer", "null"], "minimum": 0},
                    "timeout_s": {"type": ["number", "null"]}, "request_id": {"type": ["string", "null"]}},
                    "required": ["action"], "additionalProperties": true})),
                "responses": step_responses}},
            "/state": {"get": {"summary": "State of a fresh env", "responses": ok(json!({"$ref": "#/components/schemas/GymState"}))}},
            "/health": {"get": {"summary": "Health", "responses": ok(json!({"type": "object"}))}},
            "/metadata": {"get": {"summary": "Environment metadata", "responses": ok(json!({"type": "object"}))}},
            "/schema": {"get": {"summary": "JSON Schemas of action, observation and state", "responses": ok(json!({"type": "object"}))}},
            "/mcp": {"post": {"summary": "MCP JSON-RPC 2.0 (no tools)", "responses": ok(json!({"type": "object"}))}}
        },
        "components": {"schemas": {
            "GymAction": action_schema(ids),
            "GymObservation": observation_schema(ids),
            "GymState": state_schema()
        }}
    })
}

/// Answers an MCP JSON-RPC request. gym envs expose no MCP tools:
/// `tools/list` returns an empty list; everything else is a JSON-RPC error.
pub fn mcp_reply(req: &Value) -> Value {
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let err = |code: i64, msg: &str| json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": msg}});
    let Some(obj) = req.as_object() else {
        return err(-32600, "Invalid Request: expected a JSON-RPC 2.0 object");
    };
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return err(-32600, "Invalid Request: jsonrpc must be \"2.0\"");
    }
    match obj.get("method").and_then(Value::as_str) {
        None => err(-32600, "Invalid Request: method missing"),
        Some("tools/list") => json!({"jsonrpc": "2.0", "id": id, "result": {"tools": []}}),
        Some(m) => err(-32601, &format!("Method not found: {m} (gym envs expose no MCP tools; use /ws)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_forms() {
        let a = parse_action(&json!({"message": "hi"}), None).unwrap();
        assert_eq!(a.text, "hi");
        let a = parse_action(&json!({"text": "x", "metadata": {}}), None).unwrap();
        assert_eq!(a.text, "x");
        let a = parse_action(&json!({"action_id": 3}), Some(&twenty48())).unwrap();
        assert_eq!(a.text, "<answer>left</answer>");
        assert_eq!(a.structured, Some(json!({"action_id": 3})));
        assert!(parse_action(&json!({"action_id": 4}), Some(&twenty48())).is_err());
        assert!(parse_action(&json!({"action_id": -1}), None).is_err());
        assert!(parse_action(&json!({}), None).is_err());
        assert!(parse_action(&json!({"mesage": "typo"}), None).is_err());
        assert!(parse_action(&json!({"message": 3}), None).is_err());
        assert!(parse_action(&json!([1]), None).is_err());
        assert!(parse_action(&json!({"message": "a", "text": "b"}), None).is_err());
    }

    fn twenty48() -> ActionIds {
        envs::games::twenty48::spec().action_ids.expect("2048 declares its moves")
    }

    #[test]
    fn reset_forms() {
        let r = parse_reset(&json!({"seed": 4, "episode_id": "e", "level": 3, "other": [1]}), &["level"]).unwrap();
        assert_eq!(r.seed, Some(4));
        assert_eq!(r.episode_id.as_deref(), Some("e"));
        assert_eq!(r.options, vec![("level".to_string(), "3".to_string())]);
        assert_eq!(parse_reset(&Value::Null, &[]).unwrap(), ResetRequest::default());
        assert!(parse_reset(&json!({"seed": -1}), &[]).is_err());
        assert!(parse_reset(&json!({"seed": "x"}), &[]).is_err());
        assert!(parse_reset(&json!({"episode_id": 5}), &[]).is_err());
    }

    #[test]
    fn episode_ids_are_uuid4() {
        let id = new_episode_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(id, new_episode_id());
    }

    #[test]
    fn twenty48_observation() {
        let obs = Observation {
            messages: vec![envs::Message::user("board")],
            state: json!({"board": [[0, 2, 0, 0], [0, 0, 0, 0], [0, 0, 4, 0], [0, 0, 0, 0]]}),
            legal_actions: vec!["<answer>up</answer>".into(), "left".into()],
            ..Default::default()
        };
        let o = observation_json(&obs, Some(&twenty48()), false, true, &Map::new());
        assert_eq!(o["legal_actions"], json!([0, 3]));
        assert_eq!(o["info_state"].as_array().map(Vec::len), Some(16));
        assert_eq!(o["info_state"][1], json!(2.0));
        assert_eq!(o["game_phase"], "initial");
        let o = observation_json(&obs, Some(&twenty48()), true, false, &Map::new());
        assert_eq!(o["legal_actions"], json!([]));
        assert_eq!(o["game_phase"], "terminal");
    }

    #[test]
    fn data_carries_metadata_twice_and_null_reward() {
        let mut m = Map::new();
        m.insert("k".into(), json!(1));
        let d = observation_data(json!({"metadata": m}), None, false);
        assert_eq!(d["metadata"]["k"], 1);
        assert_eq!(d["reward"], Value::Null);
        let d = observation_data(json!({"metadata": {}}), Some(1.5), true);
        assert!(d.get("metadata").is_none());
        assert_eq!(d["reward"], 1.5);
    }

    #[test]
    fn mcp_errors() {
        assert_eq!(mcp_reply(&json!({}))["error"]["code"], -32600);
        assert_eq!(mcp_reply(&json!({"jsonrpc": "2.0", "id": 1, "method": "x"}))["error"]["code"], -32601);
        assert_eq!(
            mcp_reply(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))["result"]["tools"],
            json!([])
        );
    }
}
