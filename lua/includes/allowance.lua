-- CONTRACT §3 allowance, integer cents. Inputs are bounded by the api
-- (picked <= 5e10, bps <= 10000) so every product stays below 2^53 and
-- double arithmetic is exact.
local function ceil_div(a, b)
  local q = math.floor(a / b)
  if q * b < a then q = q + 1 end
  return q
end

local function ceiling_cents(picked, tax_bps, tol_bps, tol_cents, hold_cents)
  local taxed = picked + ceil_div(picked * tax_bps, 10000)
  local slack = ceil_div(taxed * tol_bps, 10000)
  if tol_cents > slack then slack = tol_cents end
  local ceiling = taxed + slack
  if hold_cents >= 0 and hold_cents < ceiling then ceiling = hold_cents end
  return ceiling
end
