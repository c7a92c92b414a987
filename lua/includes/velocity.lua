-- The velocity window in the trip hash (VELOCITY_IN_TRIP_HASH): field `vel` holds the times of
-- the trip's newest swipes, at most max_swipes of them, oldest first: the first in ms, each next
-- as its difference from the one before ("1764860000000,1200,340"), a third of the bytes of
-- absolute times and no key of its own (the :swipes sorted set cost four calls per decision).

-- The times (ms) in `text` after after_ms, oldest first, the newest max_swipes at most.
local function velocity_window(text, after_ms, max_swipes)
  local times = {}
  if not text or text == '' then return times end
  local at = 0
  for part in string.gmatch(text, '[^,]+') do
    at = at + tonumber(part)
    if at > after_ms then times[#times + 1] = at end
  end
  -- Clocks of different pods may disagree: order by time, so "the newest" means the latest.
  table.sort(times)
  while #times > max_swipes do table.remove(times, 1) end
  return times
end

-- The field's text with a swipe at now_ms added to `times` (velocity_window's list, changed).
local function velocity_add(times, now_ms, max_swipes)
  times[#times + 1] = now_ms
  table.sort(times)
  while #times > max_swipes do table.remove(times, 1) end
  local parts = { string.format('%d', times[1]) }
  for i = 2, #times do parts[i] = string.format('%d', times[i] - times[i - 1]) end
  return table.concat(parts, ',')
end
