"""The server-side scripts of RedisDriver's flushes: each runs atomically on the server, is loaded
once (`SCRIPT LOAD`) and then called by its SHA1 (`EVALSHA`), many calls in one pipeline.

`SAVE_KEYS` writes a chunk of keys' hashes, each checked first against the version this writer
knows of it (see `storey.drivers.redis_driver` on several writers): all the chunk's keys are
checked before any is written, so that a chunk is saved whole or not at all.

    KEYS   the chunk's hashes
    ARGV   the writer's token, then for each key: the version this writer last knew of it ('' when
           it never loaded it: the write is not checked), the number of fields to set, the
           number of fields to remove, those fields and values, those fields
    reply  {1, {new version of each key}} when saved, {0, {index, stored version, ...}} of the
           keys another writer changed otherwise (then nothing is written)

`SAVE_SCHEMA` sets aggregator descriptions in a table's schema hash, unless it holds a different
description of one of them (then it sets none and returns those names and stored descriptions).
"""

import hashlib

__all__ = ["SAVE_KEYS", "SAVE_SCHEMA", "Script"]


class Script:
    """A Lua script and its SHA1 (what `EVALSHA` calls it by)."""

    def __init__(self, source):
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()


SAVE_KEYS = Script(
    """
local token = ARGV[1]
local conflicts = {}
local at = 2
for i = 1, #KEYS do
  local expected = ARGV[at]
  if expected ~= '' then
    local held = redis.call('HMGET', KEYS[i], '__version', '__writer')
    local version = held[1] or '0'
    if version ~= expected and held[2] ~= token then
      conflicts[#conflicts + 1] = i
      conflicts[#conflicts + 1] = version
    end
  end
  at = at + 3 + 2 * tonumber(ARGV[at + 1]) + tonumber(ARGV[at + 2])
end
if #conflicts > 0 then
  return {0, conflicts}
end
local versions = {}
at = 2
for i = 1, #KEYS do
  local sets = 2 * tonumber(ARGV[at + 1])
  local removes = tonumber(ARGV[at + 2])
  local first = at + 3
  redis.call('HSET', KEYS[i], '__writer', token, unpack(ARGV, first, first + sets - 1))
  if removes > 0 then
    redis.call('HDEL', KEYS[i], unpack(ARGV, first + sets, first + sets + removes - 1))
  end
  versions[i] = redis.call('HINCRBY', KEYS[i], '__version', 1)
  at = first + sets + removes
end
return {1, versions}
"""
)

SAVE_SCHEMA = Script(
    """
local differing = {}
for i = 1, #ARGV, 2 do
  local held = redis.call('HGET', KEYS[1], ARGV[i])
  if held and held ~= ARGV[i + 1] then
    differing[#differing + 1] = ARGV[i]
    differing[#differing + 1] = held
  end
end
if #differing == 0 then
  for i = 1, #ARGV, 2 do
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
return differing
"""
)
