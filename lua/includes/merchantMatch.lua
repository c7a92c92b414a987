--[[
  Merchant matching of ALREADY-NORMALIZED strings (CONTRACT §4); the twin of
  namesMatch/merchantMatches in src/domain/merchant.ts, which normalizes (NFKC, case,
  punctuation, store numbers, USPS abbreviations) before the values reach Redis.
  test/unit/merchant.test.ts runs every table row through both and they must agree.

  Byte-wise only (Lua 5.1 has no Unicode): normalized strings may hold non-ASCII
  letters, which is fine because a UTF-8 prefix is a byte prefix. Lengths are UTF-8
  BYTES on both sides (TS uses Buffer.byteLength).

  Names match when: equal; or the shorter is a prefix of the longer and the next byte
  of the longer is a space (whole-word prefix: "safeway" ~ "safeway store", not
  "safe" ~ "safeway"); or the shorter is a prefix and at least 22 bytes long
  (processor descriptors are cut at 22 characters). Empty never matches.
  Addresses match when equal and not empty.
]]

local MERCHANT_NAME_TRUNCATED_BYTES_MIN = 22

local function merchant_names_match(a, b)
  if a == '' or b == '' then return false end
  if a == b then return true end
  local shorter, longer = a, b
  if #shorter > #longer then shorter, longer = b, a end
  if string.sub(longer, 1, #shorter) ~= shorter then return false end
  if string.byte(longer, #shorter + 1) == 32 then return true end
  return #shorter >= MERCHANT_NAME_TRUNCATED_BYTES_MIN
end

local function merchant_matches(swipe_name, swipe_addr, store_name, store_addr)
  if swipe_addr == '' or swipe_addr ~= store_addr then return false end
  return merchant_names_match(swipe_name, store_name)
end

--[[
  Merchant matching on processor data (CONTRACT §4b); the twin of
  processorMerchantMatches in src/processors/common/merchant.ts. Every argument is
  already normalized; '' means "not known". Sets are ',a,b,' strings (plain find).
  Names must match (§4); an MCC outside a non-empty allow-list (or no MCC at all
  against one) is a mismatch; then the strongest evidence both sides have decides:
  network id, else street address, else postal code. No common evidence: mismatch.
]]
local function processor_merchant_matches(name, addr, nid, postal, mcc, s_name, s_addr, s_nids, s_postal, s_mccs)
  if not merchant_names_match(name, s_name) then return false end
  if s_mccs ~= '' and (mcc == '' or not string.find(s_mccs, ',' .. mcc .. ',', 1, true)) then return false end
  if nid ~= '' and s_nids ~= '' then return string.find(s_nids, ',' .. nid .. ',', 1, true) ~= nil end
  if addr ~= '' and s_addr ~= '' then return addr == s_addr end
  if postal ~= '' and s_postal ~= '' then return postal == s_postal end
  return false
end
