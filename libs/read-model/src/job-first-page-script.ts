/**
 * A job's summary, its deletion time and its newest snapshot views, in one call (docs/decisions/0025): the
 * views' keys depend on the ids the sorted set holds, which a pipeline cannot chain. It reads only the key
 * space it is given, so one request never mixes versions; all of a store's keys share a hash tag (one slot).
 *
 * KEYS: the summary, the `deleted` hash, the snapshot sorted set. ARGV: the job id, the prefix of its
 * snapshot views' keys, how many views to return. Skips ids without a view, as ReadModel.snapshots does.
 * Returns {} when there is no summary; else {summary, deletedAt or nil, {view, …}}.
 */
export const JOB_FIRST_PAGE_SCRIPT = `
local summary = redis.call('GET', KEYS[1])
if not summary then return {} end
local deleted = redis.call('HGET', KEYS[2], ARGV[1])
local want = tonumber(ARGV[3])
local views = {}
local max = '+inf'
while #views < want do
  local ids = redis.call('ZREVRANGEBYSCORE', KEYS[3], max, '-inf', 'LIMIT', 0, want)
  for _, id in ipairs(ids) do
    local view = redis.call('GET', ARGV[2] .. id)
    if view then
      views[#views + 1] = view
      if #views == want then break end
    end
  end
  if #ids < want then break end
  max = '(' .. ids[#ids]
end
return {summary, deleted, views}
`;
