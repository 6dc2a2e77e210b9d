"""Per-account token buckets shared by every worker.

With Redis (REDIS_URL set) the bucket lives in Redis and is taken atomically by a Lua
script, so N workers together hold the account's rate. Without Redis (the SQLite quick
start) each process keeps its own bucket: the rate then holds per worker process."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from msgcenter import kv

# KEYS[1] bucket key; ARGV: rate (tokens/s), burst, wanted, now (s, float)
# Returns {granted, wait_ms}: tokens taken now, and ms until the next token.
_TAKE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then tokens = burst; ts = now end
if now > ts then tokens = math.min(burst, tokens + (now - ts) * rate) end
local granted = math.min(wanted, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(math.max(now, ts)))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
local wait_ms = 0
if granted < wanted then wait_ms = math.ceil((1 - (tokens - math.floor(tokens))) / rate * 1000) end
return {granted, wait_ms}
"""


@dataclass
class Grant:
    granted: int
    wait: float  # seconds until the next token


_script = None
_local: dict[str, tuple[float, float]] = {}
_local_lock = threading.Lock()


def _key(account_id: int) -> str:
    return f"msgcenter:ratelimit:account:{account_id}"


def bucket_status(account_id: int, rate: float) -> tuple[float, float] | None:
    """(tokens available now, burst) of the account's shared bucket, read without taking
    any; None without Redis (buckets then live in each process)."""
    client = kv.get_redis()
    if client is None:
        return None
    burst = max(1.0, rate)
    tokens, ts = client.hmget(_key(account_id), "tokens", "ts")
    if tokens is None:
        return burst, burst
    sec, usec = client.time()
    elapsed = max(0.0, sec + usec / 1e6 - float(ts or 0))
    return min(burst, float(tokens) + elapsed * rate), burst


def take(account_id: int, rate_per_sec: float, wanted: int, *, burst: float | None = None) -> Grant:
    """Take up to `wanted` tokens from the account's bucket (capacity `burst`, default
    one second's worth). Never blocks."""
    global _script
    burst = max(1.0, burst if burst is not None else rate_per_sec)
    key = _key(account_id)
    client = kv.get_redis()
    if client is not None:
        if _script is None:
            _script = client.register_script(_TAKE)
        # Redis server time keeps every worker on one clock.
        sec, usec = client.time()
        granted, wait_ms = _script(
            keys=[key], args=[rate_per_sec, burst, wanted, sec + usec / 1e6], client=client
        )
        return Grant(int(granted), int(wait_ms) / 1000.0)
    with _local_lock:
        now = time.monotonic()
        tokens, ts = _local.get(key, (burst, now))
        tokens = min(burst, tokens + (now - ts) * rate_per_sec)
        granted = min(wanted, int(tokens))
        tokens -= granted
        _local[key] = (tokens, now)
        wait = 0.0 if granted >= wanted else (1 - (tokens - int(tokens))) / rate_per_sec
        return Grant(granted, wait)


def acquire(account_id: int, rate_per_sec: float, wanted: int, *, max_wait: float = 2.0) -> int:
    """Take tokens for up to `wanted` sends, waiting at most `max_wait` seconds in total.
    Returns how many may be sent now; the caller reschedules the rest."""
    got = 0
    deadline = time.monotonic() + max_wait
    while got < wanted:
        grant = take(account_id, rate_per_sec, wanted - got)
        got += grant.granted
        if got >= wanted:
            break
        if time.monotonic() + grant.wait > deadline:
            break
        time.sleep(max(grant.wait, 0.001))
    return got
