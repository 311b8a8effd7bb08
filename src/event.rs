//! The optional invalidation event, with the fresh checklist in it.
//!
//! The event is PUBLISHed inside `timestamp()`'s transaction (atomic with the
//! write, no extra round trip). Its payload must carry the checklist of the
//! hash *after* the write, which only Redis sees at that point, so the checks
//! are evaluated there: a small Lua interpreter of the rules' check data (the
//! same primitives as [`crate::preflight`], compiled to compact JSON at load
//! by [`crate::rules::checks::checks_spec`] and carried in
//! `Rules::checks_spec`) runs inside the transaction, reads the hash and
//! publishes `{...prefix, "checklist": {name: bool, ...}}`. Tests compare its output
//! with `preflight()` on the same hashes (tests/test_events.py).

/// Lua: `checklist_event(hash_key, prefix, spec)` returns the event payload:
/// `prefix` (a JSON object) with `"checklist"` appended, evaluated on the hash
/// as it is now. Integers follow wepppy's preflight rule exactly (optional sign,
/// ASCII digits, signed 64-bit; compared as decimal strings, never as doubles).
#[macro_export]
#[doc(hidden)]
macro_rules! checklist_lua {
    () => {
        r#"
local function checklist_event(hkey, prefix, spec_json)
  if spec_json == nil or spec_json == '' then return prefix end
  local spec = cjson.decode(spec_json)
  local flat = redis.call('HGETALL', hkey)
  local h = {}
  for i = 1, #flat, 2 do h[flat[i]] = flat[i + 1] end
  local I64 = '9223372036854775807'
  local function digits_gt(a, b)
    if #a ~= #b then return #a > #b end
    for i = 1, #a do
      local x, y = string.byte(a, i), string.byte(b, i)
      if x ~= y then return x > y end
    end
    return false
  end
  local function int(s)
    if type(s) ~= 'string' then return nil end
    local sign, d = string.match(s, '^([+-]?)([0-9]+)$')
    if d == nil then return nil end
    d = string.gsub(d, '^0+', '')
    if d == '' then return {neg = false, d = '0'} end
    local neg = (sign == '-')
    if neg then
      if digits_gt(d, '9223372036854775808') then return nil end
    elseif digits_gt(d, I64) then return nil end
    return {neg = neg, d = d}
  end
  local function gt(a, b)
    if a.neg ~= b.neg then return b.neg end
    if a.d == b.d then return false end
    local mag = digits_gt(a.d, b.d)
    if a.neg then return not mag end
    return mag
  end
  local function operand(op, depth)
    if op[1] == 't' then return {raw = h['timestamps:' .. op[2]]} end
    local g = spec.groups[op[2]]
    if g == nil or depth > 64 then return {raw = nil} end
    if g[1] == 'max' then
      local best = nil
      for _, o in ipairs(g[2]) do
        local v = operand(o, depth + 1)
        local n
        if v.isint then n = v.int else n = int(v.raw) end
        if n ~= nil and (best == nil or gt(n, best)) then best = n end
      end
      return {isint = true, int = best}
    end
    for _, o in ipairs(g[2]) do
      local v = operand(o, depth + 1)
      if v.isint then
        if v.int ~= nil then return v end
      elseif v.raw ~= nil and v.raw ~= '' then return v end
    end
    return {raw = nil}
  end
  local function as_int(v)
    if v.isint then return v.int end
    return int(v.raw)
  end
  local function eval(c)
    local k = c[1]
    if k == 'exists' then return h[c[2]] ~= nil end
    if k == 'nonempty' then return h[c[2]] ~= nil and h[c[2]] ~= '' end
    if k == 'eq' then return h[c[2]] == c[3] end
    if k == 'newer' then
      local s = as_int(operand(c[2], 0))
      local all = c[4]
      for _, o in ipairs(c[3]) do
        local v = as_int(operand(o, 0))
        local ok = s ~= nil and v ~= nil and gt(s, v)
        if all and not ok then return false end
        if (not all) and ok then return true end
      end
      return all
    end
    if k == 'all' then
      for _, x in ipairs(c[2]) do if not eval(x) then return false end end
      return true
    end
    if k == 'any' then
      for _, x in ipairs(c[2]) do if eval(x) then return true end end
      return false
    end
    if k == 'not' then return not eval(c[2]) end
    if k == 'present' then
      local v = operand(c[2], 0)
      if v.isint then return v.int ~= nil end
      return v.raw ~= nil and v.raw ~= ''
    end
    if k == 'when' then return (not eval(c[2])) or eval(c[3]) end
    return false
  end
  local parts = {}
  for i, pair in ipairs(spec.checks) do
    parts[i] = cjson.encode(pair[1]) .. ':' .. (eval(pair[2]) and 'true' or 'false')
  end
  return string.sub(prefix, 1, -2) .. ',"checklist":{' .. table.concat(parts, ',') .. '}}'
end
"#
    };
}

/// Standalone layout: `EVAL` inside the MULTI, after the write.
/// `KEYS[1]` = hash; `ARGV` = channel, prefix, spec. Returns PUBLISH's reply.
pub const PUBLISH_LUA: &str = concat!(
    checklist_lua!(),
    "return redis.call('PUBLISH', ARGV[1], checklist_event(KEYS[1], ARGV[2], ARGV[3]))\n"
);
