/**
 * The Lua scripts behind RedisLimiter. Each runs atomically on the Redis server, so an admission
 * checks and takes every limit of every subject in one step, whichever replica sends it. Time is
 * the server's (TIME), never a replica's clock. Amounts of money travel as decimal strings and are
 * compared as strings and added with INCRBY, never as Lua numbers (doubles lose nanos past 2^53).
 *
 * Keys of one subject (S = "<prefix>:<kind>:<scope>:<id>"):
 *   rpm   ZSET   ticket id → admission time (ms); sliding window log, pruned to the window; TTL = window
 *   tpm   HASH   bucket index (time / bucketMs) → tokens; buckets older than the window are deleted;
 *                TTL = window + one bucket
 *   conc  ZSET   ticket id → lease expiry (ms); expired leases are pruned before counting, so a replica
 *                that dies mid-call frees its slots within one lease; TTL = lease
 *   spend-day:<YYYYMMDD> / spend-month:<YYYYMM>   STRING committed USD nanos (settled spend + open
 *                reservations) of that UTC day / month; TTL = until the period ends + one day
 *   ticket:<id>  STRING marker of an unsettled admission; TTL = lease, renewed with the lease. Settle
 *                applies its corrections only when it deletes the marker, so a settle is applied at
 *                most once (retries are safe) and never to counters a FLUSHALL has reset.
 */

/** Limit kinds as the admit script reports them. */
export const KIND_CODES = {
  1: "requests_per_minute",
  2: "tokens_per_minute",
  3: "concurrent_requests",
  4: "budget_usd_per_day",
  5: "budget_usd_per_month",
} as const;

/** Keys each subject passes to the admit script: rpm, tpm, conc, day-spend prefix, month-spend prefix. */
export const ADMIT_KEYS_PER_SUBJECT = 5;
/** ARGV each subject passes to the admit script (empty string = no such limit). */
export const ADMIT_ARGS_PER_SUBJECT = 5;
/** ARGV before the per-subject ones. */
export const ADMIT_FIXED_ARGS = 9;

/**
 * KEYS: [1] ticket marker, then per subject: rpm, tpm, conc, day-spend prefix, month-spend prefix.
 * ARGV: [1] ticket id, [2] window ms, [3] token bucket ms, [4] lease ms, [5] tokens, [6] cost nanos,
 *       [7] concurrency retry hint ms, [8] "1" to write the ticket marker, [9] subject count, then per
 *       subject: rpm limit, tpm limit, concurrency limit, day threshold, month threshold, where a
 *       threshold is budget - cost (negative when the reservation alone exceeds the budget).
 * Returns {1, token bucket, day id, month id} when admitted, or {0, subject index (0-based), kind
 * code, retry-after ms or -1, ...} for every limit that refuses; then nothing has been taken.
 */
export const ADMIT_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id = ARGV[1]
local window = tonumber(ARGV[2])
local bucketMs = tonumber(ARGV[3])
local lease = tonumber(ARGV[4])
local tokensArg = ARGV[5]
local tokens = tonumber(tokensArg)
local cost = ARGV[6]
local concRetry = tonumber(ARGV[7])
local n = tonumber(ARGV[9])

-- Compares two decimal integer strings exactly: -1, 0 or 1.
local function cmp(a, b)
  local na = string.sub(a, 1, 1) == '-'
  local nb = string.sub(b, 1, 1) == '-'
  if na ~= nb then
    if na then return -1 else return 1 end
  end
  if na then
    a = string.sub(a, 2)
    b = string.sub(b, 2)
  end
  a = string.gsub(a, '^0+', '')
  b = string.gsub(b, '^0+', '')
  local r = 0
  if #a ~= #b then
    if #a < #b then r = -1 else r = 1 end
  elseif a ~= b then
    if a < b then r = -1 else r = 1 end
  end
  if na then r = -r end
  return r
end

-- Civil date of a day number (days since 1970-01-01), and back (H. Hinnant's algorithms).
local function civil(z)
  z = z + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m
  if mp < 10 then m = mp + 3 else m = mp - 9 end
  if m <= 2 then y = y + 1 end
  return y, m, d
end
local function daysFromCivil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp
  if m > 2 then mp = m - 3 else mp = m + 9 end
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

local dayNumber = math.floor(now / 86400000)
local y, m, d = civil(dayNumber)
local dayId = string.format('%04d%02d%02d', y, m, d)
local monthId = string.format('%04d%02d', y, m)
local nextDay = (dayNumber + 1) * 86400000
local ny, nm = y, m + 1
if nm > 12 then
  ny = y + 1
  nm = 1
end
local nextMonth = daysFromCivil(ny, nm, 1) * 86400000
local bucket = math.floor(now / bucketMs)

local refused = {0}
local function refuse(i, kind, retry)
  refused[#refused + 1] = i
  refused[#refused + 1] = kind
  refused[#refused + 1] = retry
end

-- Check every limit of every subject; only pruning of expired entries writes here.
for i = 0, n - 1 do
  local k = 1 + i * 5
  local a = 9 + i * 5
  local rpm, tpm, conc, dayT, monthT = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  if conc ~= '' then
    local limit = tonumber(conc)
    redis.call('ZREMRANGEBYSCORE', KEYS[k + 3], '-inf', now)
    if redis.call('ZCARD', KEYS[k + 3]) + 1 > limit then
      if limit > 0 then refuse(i, 3, concRetry) else refuse(i, 3, -1) end
    end
  end
  if rpm ~= '' then
    local limit = tonumber(rpm)
    redis.call('ZREMRANGEBYSCORE', KEYS[k + 1], '-inf', now - window)
    local count = redis.call('ZCARD', KEYS[k + 1])
    if count + 1 > limit then
      local retry = -1
      if limit > 0 then
        -- The call fits once all but limit-1 of the logged admissions have left the window.
        local e = redis.call('ZRANGE', KEYS[k + 1], count - limit, count - limit, 'WITHSCORES')
        if e[2] then retry = tonumber(e[2]) + window - now end
      end
      refuse(i, 1, retry)
    end
  end
  if tpm ~= '' then
    local limit = tonumber(tpm)
    local h = redis.call('HGETALL', KEYS[k + 2])
    local live = {}
    local used = 0
    for j = 1, #h, 2 do
      local b = tonumber(h[j])
      local v = tonumber(h[j + 1])
      if (b + 1) * bucketMs + window <= now then
        redis.call('HDEL', KEYS[k + 2], h[j])
      else
        used = used + v
        live[#live + 1] = {b, v}
      end
    end
    if used + tokens > limit then
      local retry = -1
      if tokens <= limit then
        table.sort(live, function(p, q) return p[1] < q[1] end)
        local need = used + tokens - limit
        local freed = 0
        for _, e in ipairs(live) do
          freed = freed + e[2]
          if freed >= need then
            retry = (e[1] + 1) * bucketMs + window - now
            break
          end
        end
      end
      refuse(i, 2, retry)
    end
  end
  if dayT ~= '' then
    local spent = redis.call('GET', KEYS[k + 4] .. ':' .. dayId) or '0'
    if cmp(spent, dayT) > 0 then
      if string.sub(dayT, 1, 1) == '-' then refuse(i, 4, -1) else refuse(i, 4, nextDay - now) end
    end
  end
  if monthT ~= '' then
    local spent = redis.call('GET', KEYS[k + 5] .. ':' .. monthId) or '0'
    if cmp(spent, monthT) > 0 then
      if string.sub(monthT, 1, 1) == '-' then refuse(i, 5, -1) else refuse(i, 5, nextMonth - now) end
    end
  end
end
if #refused > 1 then return refused end

-- Every limit allows the call: take it from every subject.
for i = 0, n - 1 do
  local k = 1 + i * 5
  local a = 9 + i * 5
  local rpm, tpm, conc, dayT, monthT = ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4], ARGV[a + 5]
  if conc ~= '' then
    redis.call('ZADD', KEYS[k + 3], now + lease, id)
    redis.call('PEXPIRE', KEYS[k + 3], lease)
  end
  if rpm ~= '' then
    redis.call('ZADD', KEYS[k + 1], now, id)
    redis.call('PEXPIRE', KEYS[k + 1], window)
  end
  if tpm ~= '' then
    redis.call('HINCRBY', KEYS[k + 2], bucket, tokensArg)
    redis.call('PEXPIRE', KEYS[k + 2], window + bucketMs)
  end
  if dayT ~= '' then
    local key = KEYS[k + 4] .. ':' .. dayId
    redis.call('INCRBY', key, cost)
    redis.call('PEXPIRE', key, nextDay - now + 86400000)
  end
  if monthT ~= '' then
    local key = KEYS[k + 5] .. ':' .. monthId
    redis.call('INCRBY', key, cost)
    redis.call('PEXPIRE', key, nextMonth - now + 86400000)
  end
end
if ARGV[8] == '1' then redis.call('SET', KEYS[1], '1', 'PX', lease) end
return {1, bucket, dayId, monthId}
`;

/** Keys each subject passes to the settle script: tpm, conc, day-spend key, month-spend key. */
export const SETTLE_KEYS_PER_SUBJECT = 4;

/**
 * KEYS: [1] ticket marker, then per subject: tpm, conc, day-spend key, month-spend key (of the
 *       periods the admission was charged to).
 * ARGV: [1] ticket id, [2] token bucket, [3] token correction, [4] cost correction (nanos, may be
 *       negative), [5] subject count, then per subject a mask of four "0"/"1" (tpm, conc, day, month).
 * Returns 1 when applied, 0 when the marker was gone (already settled, expired or flushed).
 */
export const SETTLE_SCRIPT = `
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
local id = ARGV[1]
local bucket = ARGV[2]
local tokenDelta = ARGV[3]
local costDelta = ARGV[4]
local n = tonumber(ARGV[5])
for i = 0, n - 1 do
  local k = 1 + i * 4
  local mask = ARGV[6 + i]
  if string.sub(mask, 1, 1) == '1' and tokenDelta ~= '0' and redis.call('HEXISTS', KEYS[k + 1], bucket) == 1 then
    if redis.call('HINCRBY', KEYS[k + 1], bucket, tokenDelta) <= 0 then redis.call('HDEL', KEYS[k + 1], bucket) end
  end
  if string.sub(mask, 2, 2) == '1' then redis.call('ZREM', KEYS[k + 2], id) end
  if string.sub(mask, 3, 3) == '1' and costDelta ~= '0' and redis.call('EXISTS', KEYS[k + 3]) == 1 then
    redis.call('INCRBY', KEYS[k + 3], costDelta)
  end
  if string.sub(mask, 4, 4) == '1' and costDelta ~= '0' and redis.call('EXISTS', KEYS[k + 4]) == 1 then
    redis.call('INCRBY', KEYS[k + 4], costDelta)
  end
end
return 1
`;

/**
 * Extends the leases of unsettled tickets: for each ticket, its marker and its concurrency entries.
 * KEYS: per ticket: marker, then its conc keys. ARGV: [1] lease ms, then per ticket: conc key count, id.
 * A ticket whose marker is gone (lease lapsed, flushed) is not revived. Returns the tickets renewed.
 */
export const RENEW_SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
local k = 1
local a = 2
local renewed = 0
while a <= #ARGV do
  local count = tonumber(ARGV[a])
  local id = ARGV[a + 1]
  a = a + 2
  local alive = redis.call('PEXPIRE', KEYS[k], lease) == 1
  k = k + 1
  for _ = 1, count do
    if alive and redis.call('ZADD', KEYS[k], 'XX', 'CH', now + lease, id) == 1 then
      redis.call('PEXPIRE', KEYS[k], lease)
    end
    k = k + 1
  end
  if alive then renewed = renewed + 1 end
end
return renewed
`;
