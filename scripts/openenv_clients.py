#!/usr/bin/env python3
"""Plays full episodes against `gym serve` servers with OpenEnv's released
Python clients (`GenericEnvClient`, sync and async), then checks the
protocol details a trainer relies on.

Usage: openenv_clients.py ENV=URL [ENV=URL ...]

Works with `openenv-core==0.3.0` and `openenv==0.10.0` (both ship the
`openenv.core` package). Exits non-zero on the first failure.
"""

import asyncio
import json
import math
import random
import sys
import urllib.request

from openenv.core import GenericEnvClient

try:
    from importlib.metadata import version as _version

    try:
        CLIENT = "openenv-core " + _version("openenv-core")
    except Exception:  # noqa: BLE001
        CLIENT = "openenv " + _version("openenv")
except Exception:  # noqa: BLE001
    CLIENT = "openenv (unknown version)"


def choose(obs, rng):
    """An action dict for an observation: a random legal action, or a reply
    in the env's answer format."""
    legal = obs.get("legal_actions") or []
    if legal:
        a = rng.choice(legal)
        return {"action_id": a} if isinstance(a, int) else {"message": a}
    state = obs.get("state") or {}
    tag = state.get("answer_tag", "answer") if isinstance(state, dict) else "answer"
    return {"message": f"<{tag}>{rng.randint(0, 9)}</{tag}>"}


def check_reward(r, first):
    if first:
        assert r is None or (isinstance(r, (int, float)) and not isinstance(r, bool)), r
    else:
        assert isinstance(r, (int, float)) and not isinstance(r, bool), f"reward {r!r} must be a number"
        assert math.isfinite(r), r


def max_steps(url):
    with urllib.request.urlopen(url + "/metadata", timeout=10) as f:
        return int(json.load(f)["max_steps"])


def play_sync(env_id, url, seed, limit):
    rng = random.Random(seed)
    with GenericEnvClient(base_url=url).sync() as env:
        r = env.reset(seed=seed, episode_id=f"sync-{env_id}-{seed}")
        check_reward(r.reward, True)
        assert r.done is False
        st = env.state()
        assert st["episode_id"] == f"sync-{env_id}-{seed}", st
        assert st["step_count"] == 0, st
        steps, total = 0, 0.0
        while not r.done:
            assert steps < limit, f"{env_id}: episode did not end within {limit} steps"
            r = env.step(choose(r.observation, rng))
            check_reward(r.reward, False)
            steps += 1
            total += r.reward
        st = env.state()
        assert st["step_count"] == steps, (st, steps)
        assert st["done"] is True, st
        # Stepping a finished episode is a server error the client raises.
        try:
            env.step(choose(r.observation, rng))
            raise AssertionError("step after done must fail")
        except RuntimeError as e:
            assert "EXECUTION_ERROR" in str(e), e
        return steps, total, r.observation


async def play_async(env_id, url, seed, limit):
    rng = random.Random(seed)
    async with GenericEnvClient(base_url=url) as env:
        r = await env.reset(seed=seed, episode_id=f"async-{env_id}-{seed}")
        check_reward(r.reward, True)
        steps, total = 0, 0.0
        while not r.done:
            assert steps < limit, f"{env_id}: episode did not end within {limit} steps"
            r = await env.step(choose(r.observation, rng))
            check_reward(r.reward, False)
            steps += 1
            total += r.reward
        st = await env.state()
        assert st["episode_id"] == f"async-{env_id}-{seed}" and st["step_count"] == steps, st
        return steps, total, r.observation


async def concurrent(env_id, url, n, limit):
    """n sessions at once, as a GRPO group does."""
    results = await asyncio.gather(*(play_async(env_id, url, 1000 + i, limit) for i in range(n)))
    return results


def main():
    pairs = [a.split("=", 1) for a in sys.argv[1:]]
    assert pairs, __doc__
    for env_id, url in pairs:
        limit = max_steps(url) + 1
        s1 = play_sync(env_id, url, 7, limit)
        s2 = play_sync(env_id, url, 7, limit)
        assert s1[:2] == s2[:2], f"{env_id}: same seed and actions must replay: {s1[:2]} vs {s2[:2]}"
        a = asyncio.run(play_async(env_id, url, 7, limit))
        assert a[:2] == s1[:2], f"{env_id}: async and sync differ: {a[:2]} vs {s1[:2]}"
        group = asyncio.run(concurrent(env_id, url, 8, limit))
        print(
            f"{CLIENT}: {env_id}: sync {s1[0]} steps reward {s1[1]:.3f}; async ok; "
            f"8 concurrent sessions, mean steps {sum(g[0] for g in group) / len(group):.1f}",
            flush=True,
        )
    print(f"{CLIENT}: all {len(pairs)} envs OK", flush=True)


if __name__ == "__main__":
    main()
