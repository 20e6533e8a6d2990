-- wrk script: POST /v1/completions, greedy, MAX_TOKENS new tokens (set by tools/load_bench.sh).
local body = '{"prompt": "Once upon a time there was", "max_tokens": ' ..
  (os.getenv("MAX_TOKENS") or "16") .. ', "temperature": 0}'
request = function()
  return wrk.format("POST", "/v1/completions", { ["Content-Type"] = "application/json" }, body)
end
response = function(status, headers, body)
  if status ~= 200 then
    io.stderr:write("status " .. status .. ": " .. body .. "\n")
  end
end
