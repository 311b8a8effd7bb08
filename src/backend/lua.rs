//! The Lua scripts the backends run: the cluster's one-slot write, and the
//! recovery and delete scripts both layouts share.

use std::sync::OnceLock;

/// The write script: KEYS[1] = prep hash, KEYS[2..] = cache keys.
/// ARGV: nsets, field, value, ..., ndels, field, ..., channel, payload.
/// Returns {had_loaded, {DEL results...}, HGETALL}.
pub(crate) const MUTATE_LUA: &str = concat!(
    crate::checklist_lua!(),
    r#"
local h = KEYS[1]
local had = redis.call('HEXISTS', h, 'attrs:loaded')
local i = 1
local nsets = tonumber(ARGV[i]); i = i + 1
if nsets > 0 then
  local args = {}
  for j = 1, nsets * 2 do args[j] = ARGV[i]; i = i + 1 end
  redis.call('HSET', h, unpack(args))
end
local ndels = tonumber(ARGV[i]); i = i + 1
if ndels > 0 then
  local args = {}
  for j = 1, ndels do args[j] = ARGV[i]; i = i + 1 end
  redis.call('HDEL', h, unpack(args))
end
local dels = {}
for k = 2, #KEYS do dels[k - 1] = redis.call('DEL', KEYS[k]) end
local channel = ARGV[i]; local payload = ARGV[i + 1]; local checks = ARGV[i + 2]
if channel ~= nil and channel ~= '' then
  redis.call('PUBLISH', channel, checklist_event(h, payload, checks))
end
return {had, dels, redis.call('HGETALL', h)}
"#
);

/// Put back missing fields: KEYS[1] = hash; ARGV = field, value, ...; returns HGETALL.
pub(crate) const HSETNX_LUA: &str = r#"
for i = 1, #ARGV, 2 do redis.call('HSETNX', KEYS[1], ARGV[i], ARGV[i + 1]) end
return redis.call('HGETALL', KEYS[1])
"#;

/// Delete keys (all in one slot): returns the DEL results.
pub(crate) const DEL_LUA: &str = r#"
local out = {}
for k = 1, #KEYS do out[k] = redis.call('DEL', KEYS[k]) end
return out
"#;

pub(crate) static MUTATE_SCRIPT: OnceLock<redis::Script> = OnceLock::new();
pub(crate) static HSETNX_SCRIPT: OnceLock<redis::Script> = OnceLock::new();
pub(crate) static DEL_SCRIPT: OnceLock<redis::Script> = OnceLock::new();

/// The script (hashed once per process).
pub(crate) fn script(
    src: &'static str,
    cell: &'static OnceLock<redis::Script>,
) -> &'static redis::Script {
    cell.get_or_init(|| redis::Script::new(src))
}
