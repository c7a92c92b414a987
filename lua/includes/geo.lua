-- Great-circle distance in metres (haversine). Distances are not money:
-- floating point is fine here.
local function distance_m(lat1, lng1, lat2, lng2)
  local rad = math.pi / 180
  local dlat = (lat2 - lat1) * rad
  local dlng = (lng2 - lng1) * rad
  local a = math.sin(dlat / 2) ^ 2 + math.cos(lat1 * rad) * math.cos(lat2 * rad) * math.sin(dlng / 2) ^ 2
  if a > 1 then a = 1 end
  return 2 * 6371008.8 * math.asin(math.sqrt(a))
end
