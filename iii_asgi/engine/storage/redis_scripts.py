"""The Lua scripts of :mod:`iii_asgi.engine.storage.redis`: each runs atomically in Redis, so
a write, its ordering index and a queue message's state change are never seen half done by
another engine.

A queued message's metadata is a JSON object (``cjson``): ``a`` attempts, ``t`` due time (ms),
``s`` position (``seq``), ``c`` created (ms), ``g`` FIFO group (absent when none); ``x`` and
``xu``: the engine that last handed the message over and until when (ms) it skips it.
"""

from __future__ import annotations

__all__ = [
    "ACK",
    "CLAIM",
    "DEAD_LETTER",
    "DELETE",
    "DISCARD",
    "PUT",
    "REDRIVE",
    "RELEASE",
    "RETRY",
    "WRITE",
]

#: KEYS: hash, order, groups, spaces, seq. ARGV: field, value, collection, space, mode
#: (``set`` | ``missing`` | ``equal``), expected. Returns {1, old?} or {0} when the mode's
#: condition failed (compare-and-set for ``update``).
WRITE = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if ARGV[5] == 'missing' then
  if old then return {0} end
elseif ARGV[5] == 'equal' then
  if old ~= ARGV[6] then return {0} end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if not old then
  redis.call('ZADD', KEYS[2], 'NX', redis.call('INCR', KEYS[5]), ARGV[1])
end
redis.call('SADD', KEYS[3], ARGV[3])
redis.call('SADD', KEYS[4], ARGV[4])
if old then return {1, old} end
return {1}
"""

#: KEYS: hash, order. ARGV: field. Returns the removed value or nil.
DELETE = """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if old then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return old
"""

# Queue scripts: KEYS[1..8] are a queue's meta, msg, ready, delayed, leased, owner, dead and
# deadorder keys (in that order), then the shared counters where listed. ``movable`` is a
# message's metadata (with this failure counted) unless it is gone or another engine holds it.
_HELPERS = """
local function unlist(id)
  redis.call('ZREM', KEYS[3], id)
  redis.call('ZREM', KEYS[4], id)
  redis.call('ZREM', KEYS[5], id)
  redis.call('HDEL', KEYS[6], id)
end
local function foreign(id, engine)
  local owner = redis.call('HGET', KEYS[6], id)
  return owner and owner ~= engine
end
local function movable(id, engine, count)
  local raw = redis.call('HGET', KEYS[1], id)
  if not raw or foreign(id, engine) then return nil end
  local m = cjson.decode(raw)
  if count == '1' then m.a = m.a + 1 end
  return m
end
"""

#: KEYS: names, seq, then meta, msg, delayed, dead of each message's queue. ARGV: count, then
#: per message: queue, id, payload, meta (without ``s``). Stores all or none; returns {1}, or
#: {0, queue, id} for a duplicate.
PUT = """
local n = tonumber(ARGV[1])
local seen = {}
for i = 0, n - 1 do
  local q, id = ARGV[2 + i * 4], ARGV[3 + i * 4]
  local meta, dead = KEYS[3 + i * 4], KEYS[6 + i * 4]
  local k = q .. '\\0' .. id
  if seen[k] or redis.call('HEXISTS', meta, id) == 1 or redis.call('HEXISTS', dead, id) == 1 then
    return {0, q, id}
  end
  seen[k] = true
end
for i = 0, n - 1 do
  local q, id = ARGV[2 + i * 4], ARGV[3 + i * 4]
  local m = cjson.decode(ARGV[5 + i * 4])
  m.s = redis.call('INCR', KEYS[2])
  redis.call('HSET', KEYS[3 + i * 4], id, cjson.encode(m))
  redis.call('HSET', KEYS[4 + i * 4], id, ARGV[4 + i * 4])
  redis.call('ZADD', KEYS[5 + i * 4], m.t, id)
  redis.call('SADD', KEYS[1], q)
end
return {1}
"""

#: KEYS: the 8 queue keys. ARGV: now, limit, lease deadline, exclusive (1/0), engine.
#: Expired leases and due messages become ready; returns {id, meta, payload, ...} leased, in
#: position order, skipping messages this engine handed over until their ``xu`` time.
CLAIM = """
local now = tonumber(ARGV[1])
local function ready(id)
  local m = redis.call('HGET', KEYS[1], id)
  if m then redis.call('ZADD', KEYS[3], cjson.decode(m).s, id) end
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now)) do
  redis.call('ZREM', KEYS[5], id)
  redis.call('HDEL', KEYS[6], id)
  ready(id)
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now)) do
  redis.call('ZREM', KEYS[4], id)
  ready(id)
end
local out = {}
local limit = tonumber(ARGV[2])
if limit <= 0 or (ARGV[4] == '1' and redis.call('ZCARD', KEYS[5]) > 0) then return out end
local taken = 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[3], 0, limit * 2 + 15)) do
  local raw = redis.call('HGET', KEYS[1], id)
  local m = cjson.decode(raw)
  if not (m.x == ARGV[5] and m.xu and m.xu > now) then
    redis.call('ZREM', KEYS[3], id)
    redis.call('ZADD', KEYS[5], ARGV[3], id)
    redis.call('HSET', KEYS[6], id, ARGV[5])
    table.insert(out, id)
    table.insert(out, raw)
    table.insert(out, redis.call('HGET', KEYS[2], id) or 'null')
    taken = taken + 1
    if taken >= limit then break end
  end
end
return out
"""

#: KEYS: the 8 queue keys. ARGV: ids. Deletes delivered messages; returns how many existed.
ACK = (
    _HELPERS
    + """
local n = 0
for _, id in ipairs(ARGV) do
  if redis.call('HDEL', KEYS[1], id) == 1 then n = n + 1 end
  redis.call('HDEL', KEYS[2], id)
  unlist(id)
end
return n
"""
)

#: KEYS: the 8 queue keys, front, seq. ARGV: id, due, mode (``front`` | ``back``), count (1/0),
#: engine. Releases a message for later (a retry when count is 1); 0 when it is not stored or
#: another engine holds it.
RETRY = (
    _HELPERS
    + """
local m = movable(ARGV[1], ARGV[5], ARGV[4])
if not m then return 0 end
m.t = tonumber(ARGV[2])
if ARGV[3] == 'front' then
  m.s = redis.call('DECR', KEYS[9])
elseif ARGV[3] == 'back' then
  m.s = redis.call('INCR', KEYS[10])
end
unlist(ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(m))
redis.call('ZADD', KEYS[4], m.t, ARGV[1])
return 1
"""
)

#: KEYS: the 8 queue keys. ARGV: id, engine, skip until (ms, or 0). Gives a claimed message
#: back unchanged (``skip until``: ready for the others now, not for this engine before then).
RELEASE = (
    _HELPERS
    + """
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return 0 end
if redis.call('HGET', KEYS[6], ARGV[1]) == ARGV[2] then
  unlist(ARGV[1])
  local m = cjson.decode(raw)
  if ARGV[3] ~= '0' then
    m.x = ARGV[2]
    m.xu = tonumber(ARGV[3])
    redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(m))
  end
  redis.call('ZADD', KEYS[3], m.s, ARGV[1])
end
return 1
"""
)

#: KEYS: the 8 queue keys, seq. ARGV: id, error, failed_at, count (1/0), engine.
DEAD_LETTER = (
    _HELPERS
    + """
local m = movable(ARGV[1], ARGV[5], ARGV[4])
if not m then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
unlist(ARGV[1])
redis.call('HSET', KEYS[7], ARGV[1], cjson.encode({m = m, e = ARGV[2], f = tonumber(ARGV[3])}))
redis.call('ZADD', KEYS[8], redis.call('INCR', KEYS[9]), ARGV[1])
return 1
"""
)

#: KEYS: the 8 queue keys, seq. ARGV: now, then ids (none: every dead letter). Returns the ids
#: moved back (fresh attempts, due now, at the back).
REDRIVE = """
local ids = {}
if #ARGV == 1 then
  ids = redis.call('ZRANGE', KEYS[8], 0, -1)
else
  for i = 2, #ARGV do ids[#ids + 1] = ARGV[i] end
end
local moved = {}
for _, id in ipairs(ids) do
  local raw = redis.call('HGET', KEYS[7], id)
  if raw then
    local m = cjson.decode(raw).m
    m.a = 0
    m.t = tonumber(ARGV[1])
    m.s = redis.call('INCR', KEYS[9])
    redis.call('HSET', KEYS[1], id, cjson.encode(m))
    redis.call('ZADD', KEYS[4], m.t, id)
    redis.call('HDEL', KEYS[7], id)
    redis.call('ZREM', KEYS[8], id)
    table.insert(moved, id)
  end
end
return moved
"""

#: KEYS: the 8 queue keys. ARGV: id. Deletes one dead letter; 1 if there was one.
DISCARD = """
if redis.call('HDEL', KEYS[7], ARGV[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[8], ARGV[1])
return 1
"""
