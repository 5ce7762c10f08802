#!/usr/bin/env python3
"""OpenEnv's reference Python server (openenv-core's `create_app` under
uvicorn) serving a trivial echo env, as the baseline for
`gym bench server`. The env mirrors gym's `echo` env served by
`gym serve echo`: action `{"message": str}`; observation
`{echoed_message, message_length}`; reward `min(0.1 * len, 1.0)`; the
episode ends after `--steps` steps.

Usage: openenv_reference_server.py [--port 8001] [--max-sessions 2048] [--steps 1] [--workers 1]
"""

import argparse
import os
import uuid
from typing import Any, Optional

import uvicorn
from openenv.core.env_server.http_server import create_app
from openenv.core.env_server.interfaces import Environment
from openenv.core.env_server.types import Action, Observation, State


class EchoAction(Action):
    message: str


class EchoObservation(Observation):
    echoed_message: str = ""
    message_length: int = 0


STEPS = int(os.environ.get("ECHO_STEPS", "1"))


class EchoEnv(Environment):
    SUPPORTS_CONCURRENT_SESSIONS = True

    def __init__(self):
        super().__init__()
        self._state = State(episode_id=None, step_count=0)

    def reset(self, seed: Optional[int] = None, episode_id: Optional[str] = None, **kwargs: Any) -> EchoObservation:
        self._state = State(episode_id=episode_id or str(uuid.uuid4()), step_count=0)
        return EchoObservation(echoed_message="", message_length=0, done=False, reward=None)

    def step(self, action: EchoAction, timeout_s: Optional[float] = None, **kwargs: Any) -> EchoObservation:
        self._state.step_count += 1
        n = len(action.message)
        return EchoObservation(
            echoed_message=action.message,
            message_length=n,
            done=self._state.step_count >= STEPS,
            reward=min(0.1 * n, 1.0),
        )

    @property
    def state(self) -> State:
        return self._state


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8001)
    p.add_argument("--max-sessions", type=int, default=2048)
    p.add_argument("--steps", type=int, default=1)
    p.add_argument("--workers", type=int, default=1)
    a = p.parse_args()
    os.environ["ECHO_STEPS"] = str(a.steps)
    global STEPS
    STEPS = a.steps
    app = create_app(EchoEnv, EchoAction, EchoObservation, env_name="echo", max_concurrent_envs=a.max_sessions)
    uvicorn.run(app, host=a.host, port=a.port, log_level="warning", ws_max_size=16 * 1024 * 1024)


if __name__ == "__main__":
    main()
